package rest

import (
	"fmt"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// The protocol pieces shared by this client and the server of
// internal/restserver, which documents the protocol.
const (
	// ProtocolVersion is the version of the REST protocol in RepoInfo.
	ProtocolVersion = 1
	// HeaderFeatures lists the server's features on every reply, comma
	// separated: FeatureConditionalCreate, FeatureAppendOnly.
	HeaderFeatures = "Bunker-Features"
	// HeaderModTime carries an object's modification time (RFC 3339 with
	// nanoseconds) on HEAD and GET replies; Last-Modified has only seconds.
	HeaderModTime = "Bunker-Mtime"
	// HeaderError carries the message of an error reply of the server
	// (one line of printable ASCII). It marks the reply as the server's
	// own: the client quotes a message only from this header, never from
	// the body of a reply, which could come from anything that answers
	// HTTP at the configured URL.
	HeaderError = "Bunker-Error"
	// MaxErrorLen is the longest error message the client quotes; the
	// server keeps its messages shorter.
	MaxErrorLen = 256
	// FeatureConditionalCreate: "If-None-Match: *" on a POST is atomic.
	FeatureConditionalCreate = "conditional-create"
	// FeatureAppendOnly: DELETE and overwrite are refused with 403.
	FeatureAppendOnly = "append-only"

	// MaxRepoDepth is the largest number of segments of a repository path.
	MaxRepoDepth = 8
	// MaxSegmentLen is the longest repository path segment.
	MaxSegmentLen = 64
	// MaxNameLen is the longest object name the server accepts (file
	// systems limit a name to 255 bytes; the local backend adds a prefix
	// and a suffix for its temporary files).
	MaxNameLen = 200
)

// ListEntry is one element of the JSON array a listing returns.
type ListEntry struct {
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
}

// RepoInfo is the JSON object "GET <repo>/" returns.
type RepoInfo struct {
	Protocol int          `json:"protocol"`
	Exists   bool         `json:"exists"`
	Features RepoFeatures `json:"features"`
}

// RepoFeatures are the features in RepoInfo.
type RepoFeatures struct {
	ConditionalCreate bool `json:"conditional_create"`
	AppendOnly        bool `json:"append_only"`
}

// reserved are the words a repository path segment may not be: they mark
// the object part of a request path.
var reserved = func() map[string]bool {
	m := map[string]bool{"metrics": true}
	for _, t := range storage.AllTypes {
		m[string(t)] = true
	}
	return m
}()

// IsTypeSegment reports whether seg names a file type that has named
// objects (every type but config).
func IsTypeSegment(seg string) bool {
	return seg != string(storage.ConfigFile) && reserved[seg] && seg != "metrics"
}

// ValidSegment checks one segment of a repository path: 1 to
// MaxSegmentLen characters of [A-Za-z0-9._-], not starting with a dot,
// and not a reserved word (config, the file type names, metrics).
func ValidSegment(seg string) error {
	if seg == "" {
		return fmt.Errorf("empty path segment")
	}
	if len(seg) > MaxSegmentLen {
		return fmt.Errorf("path segment longer than %d characters", MaxSegmentLen)
	}
	if seg[0] == '.' {
		return fmt.Errorf("path segment %q starts with a dot", seg)
	}
	for _, c := range seg {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("path segment %q may hold only [A-Za-z0-9._-]", seg)
		}
	}
	if reserved[seg] {
		return fmt.Errorf("path segment %q is reserved", seg)
	}
	return nil
}

// SplitRepoPath checks a repository path ("/", "/name", "/user/name"; a
// trailing slash is ignored) and returns its segments (none for "/").
func SplitRepoPath(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("repository path %q does not start with /", p)
	}
	p = strings.TrimSuffix(p[1:], "/")
	if p == "" {
		return nil, nil
	}
	segs := strings.Split(p, "/")
	if len(segs) > MaxRepoDepth {
		return nil, fmt.Errorf("repository path %q has more than %d segments", "/"+p, MaxRepoDepth)
	}
	for _, s := range segs {
		if err := ValidSegment(s); err != nil {
			return nil, fmt.Errorf("repository path %q: %w", "/"+p, err)
		}
	}
	return segs, nil
}

// ValidName checks a handle for the protocol: storage.Handle.Valid and at
// most MaxNameLen characters.
func ValidName(h storage.Handle) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if len(h.Name) > MaxNameLen {
		return fmt.Errorf("invalid handle %s…: name longer than %d characters", h.String()[:len(h.Type)+17], MaxNameLen)
	}
	return nil
}
