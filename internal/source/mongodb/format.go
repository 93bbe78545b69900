package mongodb

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/timespec"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Root is the directory of a backup in the snapshot tree.
const Root = "mongodb"

// Files of a backup, relative to Root.
const (
	InfoFile    = "backup.json"
	OplogFile   = "oplog.bson"
	ArchiveFile = "dump.archive"
)

// Format names backup.json; FormatVersion is the newest version this code
// reads and the one it writes.
const (
	Format        = "bunker-mongodb"
	FormatVersion = 1
)

// Collection types.
const (
	TypeCollection = "collection"
	TypeView       = "view"
	TypeTimeseries = "timeseries"
)

// BackupInfo is mongodb/backup.json: what was dumped, from where, when.
type BackupInfo struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Tool is "mongodump" when the backup is ArchiveFile, "" when the
	// files were written by this package.
	Tool          string   `json:"tool,omitempty"`
	ServerVersion string   `json:"server_version"`
	Topology      string   `json:"topology"`
	ReplicaSet    string   `json:"replica_set,omitempty"`
	Hosts         []string `json:"hosts"`
	// Start and End bracket the dump.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// OplogStart and OplogEnd ("T:I") are the newest oplog entry before
	// the dump started and after it ended; OplogFile holds the entries
	// between them, both included. Replaying them makes the restored data
	// consistent as of OplogEnd.
	OplogStart   string `json:"oplog_start,omitempty"`
	OplogEnd     string `json:"oplog_end,omitempty"`
	OplogEntries int64  `json:"oplog_entries,omitempty"`
	// Users is set when admin's users and roles were dumped.
	Users       bool             `json:"users,omitempty"`
	Collections []CollectionInfo `json:"collections"`
	Warnings    []string         `json:"warnings,omitempty"`
}

// CollectionInfo is one collection of a backup.
type CollectionInfo struct {
	DB   string `json:"db"`
	Name string `json:"name"`
	Type string `json:"type"`
	// Data is the .bson file relative to Root ("" for a view); Metadata
	// the .metadata.json file ("" for users and roles).
	Data      string `json:"data,omitempty"`
	Metadata  string `json:"metadata,omitempty"`
	Documents int64  `json:"documents"`
	Bytes     int64  `json:"bytes"`
	Indexes   int    `json:"indexes"`
}

// Namespace is "db.name".
func (c *CollectionInfo) Namespace() string { return c.DB + "." + c.Name }

// authCollection reports whether c is one of admin's users and roles
// collections, restored only on request.
func (c *CollectionInfo) authCollection() bool {
	return c.DB == "admin" && strings.HasPrefix(c.Name, "system.")
}

// Encode returns the JSON of backup.json.
func (b *BackupInfo) Encode() ([]byte, error) {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// DecodeBackupInfo parses and checks backup.json.
func DecodeBackupInfo(data []byte) (*BackupInfo, error) {
	var b BackupInfo
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", InfoFile, err)
	}
	if b.Format != Format {
		return nil, fmt.Errorf("%s: format %q is not %q", InfoFile, b.Format, Format)
	}
	if b.Version < 1 || b.Version > FormatVersion {
		return nil, fmt.Errorf("%s: format version %d is not supported (this bunker reads up to %d: upgrade it)", InfoFile, b.Version, FormatVersion)
	}
	for _, ts := range []string{b.OplogStart, b.OplogEnd} {
		if ts != "" {
			if _, err := ParseTimestamp(ts); err != nil {
				return nil, fmt.Errorf("%s: %w", InfoFile, err)
			}
		}
	}
	for i := range b.Collections {
		c := &b.Collections[i]
		if c.DB == "" || c.Name == "" {
			return nil, fmt.Errorf("%s: collection %d has no name", InfoFile, i)
		}
		switch c.Type {
		case TypeCollection, TypeView, TypeTimeseries:
		default:
			return nil, fmt.Errorf("%s: %s has unknown type %q", InfoFile, c.Namespace(), c.Type)
		}
		for _, p := range []string{c.Data, c.Metadata} {
			if p != "" && !localPath(p) {
				return nil, fmt.Errorf("%s: %s: invalid file name %q", InfoFile, c.Namespace(), p)
			}
		}
		if c.Type != TypeView && c.Data == "" {
			return nil, fmt.Errorf("%s: %s has no data file", InfoFile, c.Namespace())
		}
	}
	return &b, nil
}

// localPath reports whether p is a clean relative slash path inside Root.
func localPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && path.Clean(p) == p && p != "." && p != ".." &&
		!strings.HasPrefix(p, "../") && !strings.ContainsRune(p, 0)
}

// ReadBackupInfo reads mongodb/backup.json from a backup.
func ReadBackupInfo(ctx context.Context, t source.Tree) (*BackupInfo, error) {
	data, err := source.ReadFile(ctx, t, Root+"/"+InfoFile)
	if err != nil {
		return nil, fmt.Errorf("not a MongoDB backup: %w", err)
	}
	return DecodeBackupInfo(data)
}

// Metadata is a collection's <coll>.metadata.json, in mongodump's layout:
// canonical extended JSON with options, indexes, uuid (hex),
// collectionName and type.
type Metadata struct {
	Options        bson.Raw   // collection options as listCollections gives them
	Indexes        []bson.Raw // listIndexes' specifications
	UUID           string     // hex, "" when unknown
	CollectionName string
	Type           string
}

// Encode returns the metadata as mongodump writes it.
func (m *Metadata) Encode() ([]byte, error) {
	opts := m.Options
	if len(opts) == 0 {
		opts = emptyDoc
	}
	idx := bson.A{}
	for _, ix := range m.Indexes {
		idx = append(idx, ix)
	}
	d := bson.D{{Key: "options", Value: opts}, {Key: "indexes", Value: idx}}
	if m.UUID != "" {
		d = append(d, bson.E{Key: "uuid", Value: m.UUID})
	}
	d = append(d, bson.E{Key: "collectionName", Value: m.CollectionName})
	if m.Type != "" {
		d = append(d, bson.E{Key: "type", Value: m.Type})
	}
	return bson.MarshalExtJSON(d, true, false)
}

var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

// DecodeMetadata parses a .metadata.json (ours or mongodump's) and checks
// what restoring needs: options is a document, every index has a key
// document and a name.
func DecodeMetadata(data []byte) (*Metadata, error) {
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON(data, false, &raw); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := raw.Validate(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	m := &Metadata{Options: emptyDoc}
	elems, err := raw.Elements()
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	for _, e := range elems {
		v := e.Value()
		var ok bool
		switch e.Key() {
		case "options":
			m.Options, ok = v.DocumentOK()
		case "indexes":
			var arr bson.RawArray
			if arr, ok = v.ArrayOK(); ok {
				vals, err := arr.Values()
				if err != nil {
					return nil, fmt.Errorf("metadata: indexes: %w", err)
				}
				for i, iv := range vals {
					ix, isDoc := iv.DocumentOK()
					if !isDoc {
						return nil, fmt.Errorf("metadata: index %d is not a document", i)
					}
					if err := checkIndex(ix); err != nil {
						return nil, fmt.Errorf("metadata: index %d: %w", i, err)
					}
					m.Indexes = append(m.Indexes, ix)
				}
			}
		case "uuid":
			if m.UUID, ok = v.StringValueOK(); ok {
				_, err := hex.DecodeString(m.UUID)
				ok = err == nil
			}
		case "collectionName":
			m.CollectionName, ok = v.StringValueOK()
		case "type":
			m.Type, ok = v.StringValueOK()
		default:
			ok = true // written by a newer mongodump: ignore
		}
		if !ok {
			return nil, fmt.Errorf("metadata: field %q has an invalid value (%s)", e.Key(), v.Type)
		}
	}
	return m, nil
}

func checkIndex(ix bson.Raw) error {
	key, err := ix.LookupErr("key")
	if err != nil {
		return errors.New("no key")
	}
	if _, ok := key.DocumentOK(); !ok {
		return errors.New("key is not a document")
	}
	name, err := ix.LookupErr("name")
	if err != nil {
		return errors.New("no name")
	}
	if _, ok := name.StringValueOK(); !ok {
		return errors.New("name is not a string")
	}
	return nil
}

// indexName returns an index specification's name.
func indexName(ix bson.Raw) string {
	s, _ := ix.Lookup("name").StringValueOK()
	return s
}

// Timestamp is an oplog position.
type Timestamp = bson.Timestamp

// FormatTimestamp writes ts as "T:I" (seconds and ordinal), the form
// mongorestore's --oplogLimit takes.
func FormatTimestamp(ts Timestamp) string {
	return strconv.FormatUint(uint64(ts.T), 10) + ":" + strconv.FormatUint(uint64(ts.I), 10)
}

// ParseTimestamp reads "T:I" or "T" (seconds since 1970 and ordinal).
func ParseTimestamp(s string) (Timestamp, error) {
	ts, i, hasI := strings.Cut(s, ":")
	t, err := strconv.ParseUint(ts, 10, 32)
	if err != nil {
		return Timestamp{}, fmt.Errorf("oplog timestamp %q is not SECONDS[:ORDINAL]", s)
	}
	var n uint64
	if hasI {
		if n, err = strconv.ParseUint(i, 10, 32); err != nil {
			return Timestamp{}, fmt.Errorf("oplog timestamp %q is not SECONDS[:ORDINAL]", s)
		}
	}
	return Timestamp{T: uint32(t), I: uint32(n)}, nil
}

// ParseLimit reads a point-in-time target: an oplog timestamp "T:I", or a
// moment of the timespec grammar (RFC 3339, e.g. 2026-01-02T15:04:05Z,
// 2026-01-02 15:04:05.25+00, or a local time without a zone). A time
// becomes the first timestamp of its second: entries of that second and
// later are not applied.
func ParseLimit(s string) (Timestamp, error) {
	if ts, err := ParseTimestamp(s); err == nil {
		return ts, nil
	}
	t, err := timespec.ParseTime(s)
	if err != nil {
		return Timestamp{}, fmt.Errorf("%q is neither an oplog timestamp (SECONDS[:ORDINAL]) nor a time: %w", s, err)
	}
	sec := t.Unix()
	if sec < 0 || sec > int64(^uint32(0)) {
		return Timestamp{}, fmt.Errorf("time %s is out of the oplog's range", s)
	}
	return Timestamp{T: uint32(sec)}, nil
}
