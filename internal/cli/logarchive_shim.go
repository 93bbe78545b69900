package cli

// TEMPORARY (branch h-mydb): the PostgreSQL branch (h-pg) changes
// expireCommand in cmd_source.go to take a source.LogArchive and adds
// snapshotInfos there. Until both are merged, this file adapts; at the
// merge delete it and rename expireLogArchiveCommand to expireCommand in
// cmd_mysql.go and cmd_mongodb.go.

import (
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/spf13/cobra"
)

// snapshotInfos is what the sources' own logic knows of snapshots.
func snapshotInfos(all []*snapshot.Snapshot) []source.SnapshotInfo {
	out := make([]source.SnapshotInfo, len(all))
	for i, s := range all {
		out[i] = source.SnapshotInfo{ID: s.ID.String(), Kind: s.Kind, Host: s.Hostname, Paths: s.Paths, Time: s.Time, Metadata: s.Metadata}
	}
	return out
}

// expireLogArchiveCommand is expireCommand for a source.LogArchive.
func (a *App) expireLogArchiveCommand(use, short, long string, la source.LogArchive) *cobra.Command {
	return a.expireCommand(use, short, long, la.Name(), func(all []*snapshot.Snapshot) ([]expired, int) {
		ex := la.Expire(snapshotInfos(all))
		for _, n := range ex.Notes {
			a.out.warnf("%s", n)
		}
		byID := map[string]*snapshot.Snapshot{}
		for _, s := range all {
			byID[s.ID.String()] = s
		}
		var out []expired
		for _, x := range ex.Expired {
			if s := byID[x.ID]; s != nil {
				out = append(out, expired{s, x.Why})
			}
		}
		return out, ex.Archives
	})
}
