package sftp

import (
	"errors"
	"io/fs"
	"strings"

	pkgsftp "github.com/pkg/sftp"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// SFTP status codes that pkg/sftp does not export. Codes above 8 come from
// later drafts of the protocol; OpenSSH speaks version 3 and sends only
// codes up to 8, but other servers send these.
const (
	fxPermissionDenied = 3
	fxFailure          = 4
	fxBadMessage       = 5
	fxOpUnsupported    = 8
	fxNoSuchPath       = 10
	fxFileExists       = 11
	fxWriteProtect     = 12
	fxNoSpace          = 14
	fxQuotaExceeded    = 15
	fxLockConflict     = 17
	fxInvalidFilename  = 20
)

// mappedError keeps an error of the SFTP client and the storage sentinel it
// stands for, so that errors.Is finds both and the message says both.
type mappedError struct {
	sentinel error
	err      error
}

func (e *mappedError) Error() string   { return e.sentinel.Error() + " (" + e.err.Error() + ")" }
func (e *mappedError) Unwrap() []error { return []error{e.sentinel, e.err} }

// statusCode returns the SFTP status code in err, if there is one.
func statusCode(err error) (uint32, bool) {
	var se *pkgsftp.StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}

// mapErr classifies an error of the SFTP client: it wraps the matching
// storage sentinel (ErrNotExist, ErrExists, ErrPermission, ErrNoSpace),
// marks malformed or unsupported requests permanent, and leaves the rest
// (lost connections and unknown failures) as it is, for the retry layer.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	code, hasCode := statusCode(err)
	switch {
	case errors.Is(err, fs.ErrNotExist), hasCode && code == fxNoSuchPath:
		sentinel = storage.ErrNotExist
	case errors.Is(err, fs.ErrPermission), hasCode && (code == fxPermissionDenied || code == fxWriteProtect || code == fxLockConflict):
		sentinel = storage.ErrPermission
	case hasCode && code == fxFileExists, errors.Is(err, fs.ErrExist):
		sentinel = storage.ErrExists
	case hasCode && (code == fxNoSpace || code == fxQuotaExceeded), hasCode && mentionsNoSpace(err):
		sentinel = storage.ErrNoSpace
	case hasCode && (code == fxBadMessage || code == fxOpUnsupported || code == fxInvalidFilename):
		return storage.Permanent(err)
	}
	if sentinel == nil {
		return err
	}
	return &mappedError{sentinel: sentinel, err: err}
}

// mentionsNoSpace reports whether a server's failure message says the disk
// or quota is full (some servers put strerror(errno) there).
func mentionsNoSpace(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "no space") || strings.Contains(s, "quota")
}

// isConnLost reports whether err says the SFTP session is gone.
func isConnLost(err error) bool {
	return errors.Is(err, pkgsftp.ErrSSHFxConnectionLost) || errors.Is(err, pkgsftp.ErrSSHFxNoConnection)
}

// isFailure reports whether err is the generic SSH_FX_FAILURE, which
// OpenSSH sends for every errno it has no code for (EEXIST, ENOSPC, EIO…).
func isFailure(err error) bool {
	code, ok := statusCode(err)
	return ok && code == fxFailure
}
