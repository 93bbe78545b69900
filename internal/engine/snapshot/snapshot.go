package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// ID of a snapshot or tree.
type ID = format.ID

// Kinds of backup a snapshot records.
const (
	KindFull         = "full"
	KindIncremental  = "incremental"
	KindDifferential = "differential"
	KindStream       = "stream" // stdin or a command's output
)

// Summary are the statistics of the backup that made a snapshot.
type Summary struct {
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	Files          int64     `json:"files"`
	Dirs           int64     `json:"dirs"`
	FilesNew       int64     `json:"files_new"`
	FilesChanged   int64     `json:"files_changed"`
	FilesUnchanged int64     `json:"files_unchanged"`
	FilesRead      int64     `json:"files_read"` // files whose content was read
	Errors         int64     `json:"errors"`
	BytesRead      int64     `json:"bytes_read"`
	TotalBytes     int64     `json:"total_bytes"`
	BlobsAdded     int64     `json:"blobs_added"`
	BytesAdded     int64     `json:"bytes_added"`  // plaintext of new blobs
	BytesStored    int64     `json:"bytes_stored"` // after compression and encryption
}

// Snapshot is one backup.
type Snapshot struct {
	Time     time.Time         `json:"time"`
	Tree     ID                `json:"tree"`
	Paths    []string          `json:"paths"`
	Hostname string            `json:"hostname"`
	Username string            `json:"username,omitempty"`
	UID      uint32            `json:"uid,omitempty"`
	GID      uint32            `json:"gid,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	Parent   *ID               `json:"parent,omitempty"`
	Base     *ID               `json:"base,omitempty"` // the full backup a differential compares against
	Kind     string            `json:"kind"`
	Excludes []string          `json:"excludes,omitempty"`
	Program  string            `json:"program_version,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"` // source-specific facts a restore needs
	Summary  *Summary          `json:"summary,omitempty"`
	Original *ID               `json:"original,omitempty"` // set on copies and rewrites

	ID ID `json:"-"`
}

// New returns a snapshot for paths taken now on this host.
func New(paths []string, tags []string, host string, t time.Time) *Snapshot {
	sn := &Snapshot{Time: t, Paths: slices.Clone(paths), Tags: slices.Clone(tags), Hostname: host}
	if sn.Hostname == "" {
		sn.Hostname, _ = os.Hostname()
	}
	if u, err := user.Current(); err == nil {
		sn.Username = u.Username
	}
	sn.UID, sn.GID = uint32(os.Getuid()), uint32(os.Getgid())
	return sn
}

// HasTag reports whether the snapshot has the tag.
func (sn *Snapshot) HasTag(t string) bool { return slices.Contains(sn.Tags, t) }

// ShortID is the first 8 hex digits of the ID.
func (sn *Snapshot) ShortID() string { return sn.ID.Short() }

// Store is what this package needs of a repository.
type Store interface {
	SaveJSON(ctx context.Context, t storage.FileType, v any) (ID, error)
	LoadJSON(ctx context.Context, t storage.FileType, name string, v any) error
	List(ctx context.Context, t storage.FileType) ([]storage.FileInfo, error)
	Backend() storage.Backend
}

// Save stores a snapshot: the commit point of a backup.
func Save(ctx context.Context, st Store, sn *Snapshot) (ID, error) {
	id, err := st.SaveJSON(ctx, storage.SnapshotFile, sn)
	if err != nil {
		return ID{}, err
	}
	sn.ID = id
	return id, nil
}

// Load reads one snapshot by full ID.
func Load(ctx context.Context, st Store, id ID) (*Snapshot, error) {
	var sn Snapshot
	if err := st.LoadJSON(ctx, storage.SnapshotFile, pack.Name(id), &sn); err != nil {
		return nil, err
	}
	sn.ID = id
	return &sn, nil
}

// Remove deletes a snapshot object.
func Remove(ctx context.Context, st Store, id ID) error {
	return st.Backend().Remove(ctx, storage.Handle{Type: storage.SnapshotFile, Name: pack.Name(id)})
}

// LoadAll reads every snapshot, oldest first. Snapshots that fail to load
// are returned in errs by name.
func LoadAll(ctx context.Context, st Store) ([]*Snapshot, map[string]error, error) {
	infos, err := st.List(ctx, storage.SnapshotFile)
	if err != nil {
		return nil, nil, err
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  []*Snapshot
		errs = map[string]error{}
		sem  = make(chan struct{}, 8)
	)
	for _, fi := range infos {
		wg.Add(1)
		sem <- struct{}{}
		go func(name string) {
			defer func() { <-sem; wg.Done() }()
			id, err := format.ParseID(name)
			var sn *Snapshot
			if err == nil {
				sn, err = Load(ctx, st, id)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !errors.Is(err, storage.ErrNotExist) { // forgotten meanwhile
					errs[name] = err
				}
				return
			}
			out = append(out, sn)
		}(fi.Name)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	SortByTime(out)
	return out, errs, nil
}

// SortByTime orders snapshots oldest first (ties by ID).
func SortByTime(s []*Snapshot) {
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.Before(s[j].Time)
		}
		return s[i].ID.String() < s[j].ID.String()
	})
}

// Filter selects snapshots.
type Filter struct {
	Hosts []string
	Tags  []string // each entry is "a,b": all of a and b; entries are alternatives
	Paths []string // snapshot must contain all of these paths
}

// Match reports whether the snapshot passes the filter.
func (f Filter) Match(sn *Snapshot) bool {
	if len(f.Hosts) > 0 && !slices.Contains(f.Hosts, sn.Hostname) {
		return false
	}
	if len(f.Tags) > 0 {
		ok := false
		for _, group := range f.Tags {
			all := true
			for _, t := range strings.Split(group, ",") {
				if t != "" && !sn.HasTag(t) {
					all = false
					break
				}
			}
			if all {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range f.Paths {
		if !slices.Contains(sn.Paths, filepath.Clean(p)) {
			return false
		}
	}
	return true
}

// Apply returns the snapshots that pass the filter.
func (f Filter) Apply(all []*Snapshot) []*Snapshot {
	var out []*Snapshot
	for _, sn := range all {
		if f.Match(sn) {
			out = append(out, sn)
		}
	}
	return out
}

// ErrNotFound means no snapshot matched a reference.
var ErrNotFound = errors.New("no matching snapshot")

// Find resolves a reference: "latest" (the newest snapshot passing the
// filter), a full ID, or a unique prefix of at least 4 hex digits.
func Find(all []*Snapshot, ref string, f Filter) (*Snapshot, error) {
	cands := f.Apply(all)
	if ref == "latest" {
		if len(cands) == 0 {
			return nil, fmt.Errorf("latest: %w", ErrNotFound)
		}
		return cands[len(cands)-1], nil
	}
	if len(ref) < 4 {
		return nil, fmt.Errorf("snapshot reference %q is too short (need at least 4 hex digits, or \"latest\")", ref)
	}
	var match *Snapshot
	for _, sn := range all {
		if strings.HasPrefix(sn.ID.String(), strings.ToLower(ref)) {
			if match != nil {
				return nil, fmt.Errorf("snapshot prefix %q is ambiguous", ref)
			}
			match = sn
		}
	}
	if match == nil {
		return nil, fmt.Errorf("snapshot %q: %w", ref, ErrNotFound)
	}
	return match, nil
}

// GroupKey is the key snapshots are grouped by.
type GroupKey struct {
	Hostname string   `json:"hostname,omitempty"`
	Paths    []string `json:"paths,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// Group splits snapshots by the fields named in by ("host", "paths",
// "tags", comma separated; "" means one group). Order of groups follows the
// first snapshot of each.
func Group(all []*Snapshot, by string) ([]GroupKey, map[string][]*Snapshot, error) {
	var useHost, usePaths, useTags bool
	for _, f := range strings.Split(by, ",") {
		switch strings.TrimSpace(f) {
		case "":
		case "host", "hostname":
			useHost = true
		case "path", "paths":
			usePaths = true
		case "tag", "tags":
			useTags = true
		default:
			return nil, nil, fmt.Errorf("unknown --group-by field %q (want host, paths, tags)", f)
		}
	}
	var keys []GroupKey
	groups := map[string][]*Snapshot{}
	for _, sn := range all {
		var k GroupKey
		if useHost {
			k.Hostname = sn.Hostname
		}
		if usePaths {
			k.Paths = slices.Clone(sn.Paths)
			slices.Sort(k.Paths)
		}
		if useTags {
			k.Tags = slices.Clone(sn.Tags)
			slices.Sort(k.Tags)
		}
		ks := k.String()
		if _, ok := groups[ks]; !ok {
			keys = append(keys, k)
		}
		groups[ks] = append(groups[ks], sn)
	}
	return keys, groups, nil
}

func (k GroupKey) String() string {
	return k.Hostname + "\x00" + strings.Join(k.Paths, "\x01") + "\x00" + strings.Join(k.Tags, "\x01")
}
