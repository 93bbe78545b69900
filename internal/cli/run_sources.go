package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/exclude"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/redact"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// jobSourceBackup maps a plan job's source to its typed backup request,
// with the defaults of the matching 'bunker backup' command, and runs it
// on uc (app.JobBackup).
func (a *App) jobSourceBackup(ctx context.Context, uc *app.App, j *plan.Job, repo app.Repo, tags []string, log io.Writer) (*app.BackupResult, error) {
	s := j.Source
	at := redact.URLs(repo.Location)
	switch s.Type {
	case "postgres":
		b, err := a.jobPostgresBackup(ctx, j, repo, tags)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup postgres (%s) into %s\n", backupKind(b.Physical), at)
		return uc.RunPostgresBackup(ctx, b)
	case "mysql":
		b, err := a.jobMySQLBackup(ctx, j, repo, tags)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup mysql (%s) into %s\n", backupKind(b.Options.Physical), at)
		return uc.RunMySQLBackup(ctx, b)
	case "mongodb":
		b, err := a.jobMongoBackup(ctx, j, repo, tags)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup mongodb into %s\n", at)
		return uc.RunMongoBackup(ctx, b)
	case "kubernetes":
		b, err := a.jobKubeBackup(j, repo, tags)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup kubernetes (cluster %s) into %s\n", b.Cluster, at)
		return uc.RunKubernetesBackup(ctx, b)
	case "files":
		listed, err := app.ReadFilesFrom(s.FilesFrom)
		if err != nil {
			return nil, fmt.Errorf("files_from: %w", err)
		}
		b := app.Backup{Repo: repo, Tags: tags, Paths: append(slices.Clone(s.Paths), listed...), OneFileSystem: s.OneFileSystem,
			Exclude: exclude.Options{Patterns: s.Exclude, PatternFiles: s.ExcludeFile, IfPresent: s.ExcludeIfPresent, ExcludeCaches: s.ExcludeCaches}}
		fmt.Fprintf(log, "backup of %s into %s\n", strings.Join(b.Paths, ", "), at)
		return uc.RunBackup(ctx, b)
	}
	// stdin: a command's output
	if len(s.Command) == 0 {
		return nil, errors.New("a stdin job needs a command")
	}
	b := app.Backup{Repo: repo, Tags: tags, StreamCommand: s.Command, StreamName: s.Filename, StreamStderr: log}
	if b.StreamName == "" {
		b.StreamName = j.Name
	}
	fmt.Fprintf(log, "backup of the output of %s as %s into %s\n", strings.Join(redactArgs(s.Command), " "), b.StreamName, at)
	return uc.RunBackup(ctx, b)
}

// jobPostgresBackup is the backup request of a plan's postgres job, with
// the defaults of 'bunker backup postgres': two dumps at once, and for a
// physical backup WAL fetched into it, a fast checkpoint and the default
// archive timeout. The DSN is the job's secret, else
// $BUNKER_POSTGRES_DSN, else libpq's PG* variables.
func (a *App) jobPostgresBackup(ctx context.Context, j *plan.Job, repo app.Repo, tags []string) (app.PostgresBackup, error) {
	s := j.Source
	dsn := a.Getenv("BUNKER_POSTGRES_DSN")
	if s.DSN != "" {
		var err error
		if dsn, err = a.planSecret(ctx, s.DSN); err != nil {
			return app.PostgresBackup{}, fmt.Errorf("source dsn: %w", err)
		}
	}
	ci, err := postgres.ParseConnInfo(dsn)
	if err != nil {
		return app.PostgresBackup{}, fmt.Errorf("source dsn: %w", err)
	}
	jobs := 2
	if s.Jobs > 0 {
		jobs = s.Jobs
	}
	return app.PostgresBackup{Repo: repo, Server: postgres.Config{Conn: ci, Getenv: a.Getenv}, Tags: tags, Physical: s.Physical,
		Logical:         postgres.LogicalOptions{Databases: s.Databases, Jobs: jobs},
		PhysicalOptions: postgres.PhysicalOptions{WALMethod: "fetch", FastCheckpoint: true, ArchiveTimeout: postgres.DefaultArchiveTimeout},
	}, nil
}

// jobMySQLBackup is the backup request of a plan's mysql job, with the
// defaults of 'bunker backup mysql'. The DSN is the job's secret, else
// $BUNKER_MYSQL_DSN; the password, when the DSN has none, $MYSQL_PWD.
func (a *App) jobMySQLBackup(ctx context.Context, j *plan.Job, repo app.Repo, tags []string) (app.MySQLBackup, error) {
	s := j.Source
	var f mysqlConnFlags
	if s.DSN != "" {
		var err error
		if f.dsn, err = a.planSecret(ctx, s.DSN); err != nil {
			return app.MySQLBackup{}, fmt.Errorf("source dsn: %w", err)
		}
	}
	conn, err := f.conn(a)
	if err != nil {
		return app.MySQLBackup{}, fmt.Errorf("source dsn: %w", err)
	}
	return app.MySQLBackup{Repo: repo, Server: mysql.Options{Conn: conn}, Tags: tags,
		Options: mysql.BackupOptions{Databases: s.Databases, Jobs: s.Jobs, Physical: s.Physical}}, nil
}

// backupKind names a database backup's kind in a job's log.
func backupKind(physical bool) string {
	if physical {
		return "physical"
	}
	return "logical"
}

// jobMongoBackup is the backup request of a plan's mongodb job, with the
// defaults of 'bunker backup mongodb' (the driver; the oplog on a replica
// set). The URI is the job's secret, else $BUNKER_MONGODB_URI; a password
// file, $BUNKER_MONGODB_PASSWORD_FILE.
func (a *App) jobMongoBackup(ctx context.Context, j *plan.Job, repo app.Repo, tags []string) (app.MongoBackup, error) {
	s := j.Source
	var f mongoConnFlags
	if s.DSN != "" {
		var err error
		if f.uri, err = a.planSecret(ctx, s.DSN); err != nil {
			return app.MongoBackup{}, fmt.Errorf("source dsn: %w", err)
		}
	}
	cfg, err := a.mongoConfig(&f)
	if err != nil {
		return app.MongoBackup{}, fmt.Errorf("source dsn: %w", err)
	}
	return app.MongoBackup{Repo: repo, Server: cfg, Tags: tags,
		Options: mongodb.DumpOptions{Select: mongodb.Selector{Databases: s.Databases}, Jobs: s.Jobs}}, nil
}

// jobKubeBackup is the backup request of a plan's kubernetes job, with
// the defaults of 'bunker backup kubernetes': the kubeconfig's context
// (or the job's), eight resources listed at once, the pods' annotation
// hooks, and with volumes, those of this node ($NODE_NAME).
func (a *App) jobKubeBackup(j *plan.Job, repo app.Repo, tags []string) (app.KubernetesBackup, error) {
	s := j.Source
	cfg, cluster, err := a.kubeConfig(&kubeConnFlags{context: s.Context})
	if err != nil {
		return app.KubernetesBackup{}, err
	}
	jobs := 8
	if s.Jobs > 0 {
		jobs = s.Jobs
	}
	return app.KubernetesBackup{Repo: repo, Config: cfg, Cluster: cluster, Tags: tags,
		Options: kube.BackupOptions{Filter: kube.Filter{IncludeNamespaces: s.IncludeNamespaces, ExcludeNamespaces: s.ExcludeNamespaces},
			ClusterResources: kube.ClusterAuto, Concurrency: jobs},
		Volumes: s.Volumes, Node: app.KubernetesNode{Node: a.Getenv("NODE_NAME"), NodeRoot: s.NodeRoot}, AnnotationHooks: true}, nil
}
