package app

import (
	"context"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
)

// MongoBackup is a backup of a MongoDB deployment: every selected
// collection read with the driver, or mongodump's archive (Tools).
type MongoBackup struct {
	Repo   Repo
	Server mongodb.Config
	// Options select what to dump; their Log and Warn default to the
	// App's Events, their Oplog is set from Oplog.
	Options mongodb.DumpOptions
	// Oplog, when set, says whether to record the oplog during the dump;
	// nil records it on a replica set (with mongodump only for a whole
	// server, as mongodump's --oplog allows).
	Oplog *bool
	// Tools, when Tools.Mongodump is set, dump with mongodump --archive
	// instead of the driver.
	Tools mongodb.Tools
	Tags  []string
	Host  string // default: this machine's name
}

// RunMongoBackup backs up a MongoDB deployment into the repository as one
// snapshot, streamed; nothing is saved unless every collection is dumped.
func (a *App) RunMongoBackup(ctx context.Context, b MongoBackup) (*BackupResult, error) {
	opts := b.Options
	if opts.Log == nil {
		opts.Log = a.infof
	}
	if opts.Warn == nil {
		opts.Warn = a.warnf
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := b.Server.Validate(); err != nil {
		return nil, err
	}
	c, err := mongodb.Connect(ctx, b.Server)
	if err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}()
	mongodump := b.Tools.Mongodump != ""
	opts.Oplog = c.Info.Topology == mongodb.ReplicaSet
	if mongodump && len(opts.Select.Databases)+len(opts.Select.Collections) > 0 {
		// mongodump's --oplog is for whole-server dumps only.
		opts.Oplog = false
	}
	if b.Oplog != nil {
		opts.Oplog = *b.Oplog
	}
	hosts := strings.Join(b.Server.Hosts(), ",")
	if c.Info.Topology == mongodb.Sharded {
		a.warnf("%s is a sharded cluster (mongos): the backup has no consistent point across shards", hosts)
	}
	a.infof("MongoDB %s (%s) at %s", c.Info.Version, c.Info.Topology, hosts)
	return a.RunSourceBackup(ctx, SourceBackup{
		Repo: b.Repo, Source: mongodb.SourceName, Paths: b.Server.SnapshotPaths(), Tags: b.Tags, Host: b.Host, Kind: snapshot.KindFull,
		Save: func(ctx context.Context, w source.Sink) (map[string]string, error) {
			var info *mongodb.BackupInfo
			var err error
			if mongodump {
				info, err = c.DumpArchive(ctx, b.Tools, w, opts)
			} else {
				info, err = c.Dump(ctx, w, opts)
			}
			if err != nil {
				return nil, err
			}
			return info.Meta().Map(), nil
		},
	})
}
