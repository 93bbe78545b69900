package postgres

import (
	"context"
	"fmt"
	"io"
	"os"

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
