package restserver

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// The append-only policy. A backup host holds the repository password, so
// whatever its credential may write is untrusted input to maintenance and
// to other hosts' restores (docs/SECURITY.md). In append-only mode the
// server therefore lets it write only what a backup writes, in the shapes
// docs/FORMAT.md gives them:
//
//	config              create once (or re-upload the same bytes)
//	keys/ packs/ index/ snapshots/
//	                    content-addressed: the name is the lower-case hex
//	                    BLAKE3-256 of the stored bytes, checked against the
//	                    body (403 when it is not)
//	sessions/s-<24 hex> writer sessions, which writers refresh and remove
//	maint/              nothing: plans, the lease, clock probes and the
//	                    retention ledger are written by prune, which needs a
//	                    maintenance credential (403)
//
// Any other name is refused with 400. Without append-only mode the client
// is the maintenance credential and may write any valid name.

// contentAddressed reports whether objects of type t are named by the
// BLAKE3-256 of their bytes.
func contentAddressed(t storage.FileType) bool {
	switch t {
	case storage.KeyFile, storage.PackFile, storage.IndexFile, storage.SnapshotFile:
		return true
	}
	return false
}

// isLowerHex reports whether s is n lower-case hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// hashNameLen is the length of a content-addressed name: 64 hex digits.
const hashNameLen = 64

// sessionNameLen is the length of "s-" and 24 hex digits.
const sessionNameLen = 2 + 24

// appendOnlyName checks, before the body is read, that an append-only
// client may write h. It returns the status and message of a refusal, or
// 0.
func appendOnlyName(h storage.Handle) (int, string) {
	switch {
	case h.Type == storage.ConfigFile:
		return 0, ""
	case h.Type == storage.MaintFile:
		return http.StatusForbidden, fmt.Sprintf("append-only: %s: maint/ objects are written only by maintenance (prune), which needs a maintenance credential", h)
	case contentAddressed(h.Type):
		if !isLowerHex(h.Name, hashNameLen) {
			return http.StatusBadRequest, fmt.Sprintf("append-only: %s: a %s name must be the 64 lower-case hex digits of the BLAKE3-256 of the object", h, h.Type)
		}
		return 0, ""
	case h.Type == storage.SessionFile:
		if name, ok := strings.CutPrefix(h.Name, "s-"); !ok || !isLowerHex(name, sessionNameLen-2) {
			return http.StatusBadRequest, fmt.Sprintf("append-only: %s: a session name must be s- and 24 lower-case hex digits", h)
		}
		return 0, ""
	}
	return http.StatusBadRequest, fmt.Sprintf("append-only: %s: unknown object type", h)
}

// appendOnlyContent checks, once the body is read, that it matches the
// name of a content-addressed object. It returns the status and message
// of a refusal, or 0.
func appendOnlyContent(h storage.Handle, data []byte) (int, string) {
	if !contentAddressed(h.Type) {
		return 0, ""
	}
	sum := blake3.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != h.Name {
		return http.StatusForbidden, fmt.Sprintf("append-only: %s: the name is not the BLAKE3-256 of the body (%s)", h, got)
	}
	return 0, ""
}

// appendOnlyRemove checks that an append-only client may delete h: only
// sessions, which writers remove when they end.
func appendOnlyRemove(h storage.Handle) (int, string) {
	if h.Type == storage.SessionFile {
		return 0, ""
	}
	return http.StatusForbidden, "append-only: " + h.String() + " may not be deleted"
}
