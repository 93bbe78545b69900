package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source"
)

// ArchiveRef says where an archived WAL file is: the archive snapshot
// that holds it, its name there (under WALDir; a partial segment standing
// in for a full one keeps its .partial name) and the system it belongs
// to.
type ArchiveRef struct {
	Snapshot source.SnapshotInfo
	Name     string
	System   string
}

// ArchiveFiles lists the files of the WAL archive snapshots of system
// sysid ("" means every system) among all, in the order of all (oldest
// snapshot first, so later copies of a name win), each with an
// ArchiveRef. Snapshots whose metadata does not parse are left out: a
// recovery or a fetch never reads a file it cannot name.
func ArchiveFiles(all []source.SnapshotInfo, sysid string) []WALFile {
	var out []WALFile
	for _, s := range all {
		if !IsPostgres(s.Metadata) || s.Metadata["type"] != TypeWAL {
			continue
		}
		m, err := ParseMetadata(s.Metadata)
		if err != nil || sysid != "" && m.SystemIdentifier != sysid {
			continue
		}
		for _, name := range m.WALFiles {
			w, _ := ParseWALName(name) // checked by ParseMetadata
			out = append(out, WALFile{WALName: w, Ref: ArchiveRef{Snapshot: s, Name: name, System: m.SystemIdentifier}})
		}
	}
	return out
}

// FindWAL picks the newest archived copy of the WAL file name among
// files, or of its partial segment when the full one is not there
// (restore_command's fallback at the end of a streamed archive).
func FindWAL(files []WALFile, name string) (WALFile, bool) {
	var found, partial *WALFile
	for i, f := range files {
		switch {
		case f.Name == name:
			found = &files[i]
		case f.Kind == WALPartial && f.Name == name+".partial":
			partial = &files[i]
		}
	}
	if found == nil {
		found = partial
	}
	if found == nil {
		return WALFile{}, false
	}
	return *found, true
}

// RecoveryWAL picks from the archive snapshots among all the WAL a
// recovery from the base backup m needs (SelectRecoveryWAL). A backup
// that left its WAL to the archive (wal_method none) must find every
// segment from its start on: a gap is an error naming the first missing
// segment.
func RecoveryWAL(all []source.SnapshotInfo, m *PhysicalManifestData) ([]WALFile, error) {
	files, err := SelectRecoveryWAL(ArchiveFiles(all, m.SystemIdentifier), m.StartWALFile)
	if err != nil {
		return nil, err
	}
	if m.WALMethod == "none" {
		if err := CheckContinuity(files, m.StartWALFile, 0); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// WriteWALFile writes the archived file ref from its archive snapshot's
// tree t to dest atomically: a temporary file beside it, fsync, rename.
// With uid >= 0 the file gets that owner.
func WriteWALFile(ctx context.Context, t source.Tree, ref ArchiveRef, dest string, uid, gid int) error {
	name := ref.Name
	rc, err := t.Open(ctx, WALDir+"/"+name)
	if err != nil {
		return fmt.Errorf("WAL %s in snapshot %.8s: %w", name, ref.Snapshot.ID, err)
	}
	defer rc.Close()
	tmp := dest + ".bunker-tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, rc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && uid >= 0 {
		err = os.Chown(tmp, uid, gid)
	}
	if err == nil {
		err = os.Rename(tmp, dest)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("WAL %s: %w", name, err)
	}
	return nil
}

// Trees gives the tree of the snapshot with the given ID (one of those
// the caller described as source.SnapshotInfo).
type Trees func(id string) source.Tree

// FetchRecoveryWAL writes into dir (created 0700, owned by uid:gid when
// uid >= 0) the archived WAL a recovery from the base backup m needs
// (RecoveryWAL) and returns how many files it wrote.
func FetchRecoveryWAL(ctx context.Context, all []source.SnapshotInfo, trees Trees, m *PhysicalManifestData, dir string, uid, gid int) (int, error) {
	files, err := RecoveryWAL(all, m)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	if uid >= 0 {
		_ = os.Chown(dir, uid, gid)
	}
	for _, f := range files {
		ref := f.Ref.(ArchiveRef)
		if err := WriteWALFile(ctx, trees(ref.Snapshot.ID), ref, filepath.Join(dir, f.Name), uid, gid); err != nil {
			return 0, err
		}
	}
	return len(files), nil
}

// FetchWAL writes the archived WAL file name of the system sysid to dest
// (restore_command): the newest copy, or its partial segment when the
// full one was never archived.
func FetchWAL(ctx context.Context, all []source.SnapshotInfo, trees Trees, name, dest, sysid string) error {
	f, ok := FindWAL(ArchiveFiles(all, sysid), name)
	if !ok {
		return fmt.Errorf("WAL file %s of system %s is not in the archive", name, sysid)
	}
	ref := f.Ref.(ArchiveRef)
	return WriteWALFile(ctx, trees(ref.Snapshot.ID), ref, dest, -1, -1)
}

// LocalSystemID returns sysid when given, else the system identifier in
// controlFile (global/pg_control of the data directory restore_command
// runs in).
func LocalSystemID(sysid, controlFile string) (string, error) {
	if sysid != "" {
		return sysid, nil
	}
	b, err := os.ReadFile(controlFile)
	if err != nil {
		return "", errors.New("cannot tell the cluster's system identifier (no global/pg_control here); give --system-id")
	}
	return ControlSystemID(b)
}

// ArchivedFile is one file of the WAL archive as wal-list shows it.
type ArchivedFile struct {
	System   string
	Name     string
	Kind     string
	Snapshot source.SnapshotInfo
}

// ListArchive lists the archived WAL files of system sysid ("" means
// all), by system and name.
func ListArchive(all []source.SnapshotInfo, sysid string) []ArchivedFile {
	var out []ArchivedFile
	for _, f := range ArchiveFiles(all, sysid) {
		ref := f.Ref.(ArchiveRef)
		out = append(out, ArchivedFile{System: ref.System, Name: f.Name, Kind: f.Kind, Snapshot: ref.Snapshot})
	}
	slices.SortStableFunc(out, func(x, y ArchivedFile) int { return strings.Compare(x.System+x.Name, y.System+y.Name) })
	return out
}
