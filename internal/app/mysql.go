package app

import (
	"context"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
)

// MySQLBackup is a backup of a MySQL or MariaDB server: a dump per
// database (logical, the default) or mariadb-backup's copy of the data
// directory (Options.Physical).
type MySQLBackup struct {
	Repo Repo
	// Server is how to reach the server; its Warn defaults to the App's
	// Events.
	Server  mysql.Options
	Options mysql.BackupOptions
	Tags    []string
	Host    string // default: this machine's name
}

// RunMySQLBackup backs up a MySQL or MariaDB server into the repository
// as one snapshot, streamed; nothing is saved unless every dump succeeds.
func (a *App) RunMySQLBackup(ctx context.Context, b MySQLBackup) (*BackupResult, error) {
	o := b.Options
	if err := o.Validate(); err != nil {
		return nil, err
	}
	so := b.Server
	if so.Warn == nil {
		so.Warn = func(msg string) { a.warnf("%s", msg) }
	}
	src, err := mysql.Connect(ctx, so)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return a.RunSourceBackup(ctx, SourceBackup{
		Repo: b.Repo, Source: mysql.SourceName, Paths: []string{mysql.BackupPath(src.Server())}, Tags: b.Tags, Host: b.Host,
		Kind: snapshot.KindFull,
		Save: func(ctx context.Context, w source.Sink) (map[string]string, error) {
			m, err := src.Backup(ctx, w, o)
			if err != nil {
				return nil, err
			}
			return m.Meta().Map(), nil
		},
	})
}
