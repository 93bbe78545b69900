package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/bunkerbackup/bunker/internal/exclude"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/redact"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// KubeConfigFunc loads the client configuration of a kubeconfig context
// ("": the current one) and names the cluster.
type KubeConfigFunc func(kubeContext string) (*rest.Config, string, error)

// SourceJobBackup maps a plan job's source to its typed backup request,
// with the defaults of the matching 'bunker backup' command, and runs it
// into repo with tags; what it does goes to log. kubeConfig loads the
// cluster configuration of kubernetes jobs.
func (a *App) SourceJobBackup(ctx context.Context, j *plan.Job, repo Repo, tags []string, log io.Writer, kubeConfig KubeConfigFunc) (*BackupResult, error) {
	s := j.Source
	at := redact.URLs(repo.Location)
	switch s.Type {
	case "postgres":
		b, err := a.jobPostgresBackup(ctx, j, repo, tags)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup postgres (%s) into %s\n", backupKind(b.Physical), at)
		return a.RunPostgresBackup(ctx, b)
	case "mysql":
		b, err := a.jobMySQLBackup(ctx, j, repo, tags)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup mysql (%s) into %s\n", backupKind(b.Options.Physical), at)
		return a.RunMySQLBackup(ctx, b)
	case "mongodb":
		b, err := a.jobMongoBackup(ctx, j, repo, tags)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup mongodb into %s\n", at)
		return a.RunMongoBackup(ctx, b)
	case "kubernetes":
		b, err := a.jobKubeBackup(j, repo, tags, kubeConfig)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "backup kubernetes (cluster %s) into %s\n", b.Cluster, at)
		return a.RunKubernetesBackup(ctx, b)
	case "files":
		listed, err := ReadFilesFrom(s.FilesFrom)
		if err != nil {
			return nil, fmt.Errorf("files_from: %w", err)
		}
		b := Backup{Repo: repo, Tags: tags, Paths: append(slices.Clone(s.Paths), listed...), OneFileSystem: s.OneFileSystem,
			Exclude: exclude.Options{Patterns: s.Exclude, PatternFiles: s.ExcludeFile, IfPresent: s.ExcludeIfPresent, ExcludeCaches: s.ExcludeCaches}}
		fmt.Fprintf(log, "backup of %s into %s\n", strings.Join(b.Paths, ", "), at)
		return a.RunBackup(ctx, b)
	}
	return a.jobStdinBackup(ctx, j, repo, tags, log)
}

// jobStdinBackup backs up a stdin job's command output.
func (a *App) jobStdinBackup(ctx context.Context, j *plan.Job, repo Repo, tags []string, log io.Writer) (*BackupResult, error) {
	s := j.Source
	if len(s.Command) == 0 {
		return nil, errors.New("a stdin job needs a command")
	}
	b := Backup{Repo: repo, Tags: tags, StreamCommand: s.Command, StreamName: s.Filename, StreamStderr: log}
	if b.StreamName == "" {
		b.StreamName = j.Name
	}
	// The user information and secret query values of the locations and
	// DSNs on the command line stay out of the log (redact.URLs: parsed
	// the way net/url parses, so a password holding '@' is hidden whole).
	shown := make([]string, len(s.Command))
	for i, arg := range s.Command {
		shown[i] = redact.URLs(arg)
	}
	fmt.Fprintf(log, "backup of the output of %s as %s into %s\n", strings.Join(shown, " "), b.StreamName, redact.URLs(repo.Location))
	return a.RunBackup(ctx, b)
}

// jobDSN is a job's DSN secret resolved, "" when it names none.
func (a *App) jobDSN(ctx context.Context, j *plan.Job) (string, error) {
	if j.Source.DSN == "" {
		return "", nil
	}
	dsn, err := a.PlanSecret(ctx, j.Source.DSN)
	if err != nil {
		return "", fmt.Errorf("source dsn: %w", err)
	}
	return dsn, nil
}

// jobPostgresBackup is the backup request of a plan's postgres job, with
// the defaults of 'bunker backup postgres': two dumps at once, and for a
// physical backup WAL fetched into it, a fast checkpoint and the default
// archive timeout. The DSN is the job's secret, else
// $BUNKER_POSTGRES_DSN, else libpq's PG* variables.
func (a *App) jobPostgresBackup(ctx context.Context, j *plan.Job, repo Repo, tags []string) (PostgresBackup, error) {
	s := j.Source
	dsn, err := a.jobDSN(ctx, j)
	if err != nil {
		return PostgresBackup{}, err
	}
	cfg, err := PostgresConn{DSN: dsn}.Config(a.getenv, nil)
	if err != nil {
		return PostgresBackup{}, fmt.Errorf("source dsn: %w", err)
	}
	jobs := 2
	if s.Jobs > 0 {
		jobs = s.Jobs
	}
	return PostgresBackup{Repo: repo, Server: cfg, Tags: tags, Physical: s.Physical,
		Logical:         postgres.LogicalOptions{Databases: s.Databases, Jobs: jobs},
		PhysicalOptions: postgres.PhysicalOptions{WALMethod: "fetch", FastCheckpoint: true, ArchiveTimeout: postgres.DefaultArchiveTimeout},
	}, nil
}

// jobMySQLBackup is the backup request of a plan's mysql job, with the
// defaults of 'bunker backup mysql'. The DSN is the job's secret, else
// $BUNKER_MYSQL_DSN; the password, when the DSN has none, $MYSQL_PWD.
func (a *App) jobMySQLBackup(ctx context.Context, j *plan.Job, repo Repo, tags []string) (MySQLBackup, error) {
	s := j.Source
	dsn, err := a.jobDSN(ctx, j)
	if err != nil {
		return MySQLBackup{}, err
	}
	so, err := MySQLConn{DSN: dsn}.Options(a.getenv)
	if err != nil {
		return MySQLBackup{}, fmt.Errorf("source dsn: %w", err)
	}
	return MySQLBackup{Repo: repo, Server: so, Tags: tags,
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
func (a *App) jobMongoBackup(ctx context.Context, j *plan.Job, repo Repo, tags []string) (MongoBackup, error) {
	s := j.Source
	uri, err := a.jobDSN(ctx, j)
	if err != nil {
		return MongoBackup{}, err
	}
	cfg, err := MongoConn{URI: uri}.Config(a.getenv)
	if err != nil {
		return MongoBackup{}, fmt.Errorf("source dsn: %w", err)
	}
	return MongoBackup{Repo: repo, Server: cfg, Tags: tags,
		Options: mongodb.DumpOptions{Select: mongodb.Selector{Databases: s.Databases}, Jobs: s.Jobs}}, nil
}

// jobKubeBackup is the backup request of a plan's kubernetes job, with
// the defaults of 'bunker backup kubernetes': the kubeconfig's context
// (or the job's), eight resources listed at once, the pods' annotation
// hooks, and with volumes, those of this node ($NODE_NAME).
func (a *App) jobKubeBackup(j *plan.Job, repo Repo, tags []string, kubeConfig KubeConfigFunc) (KubernetesBackup, error) {
	s := j.Source
	if kubeConfig == nil {
		return KubernetesBackup{}, errors.New("kubernetes jobs cannot be run here: no kubeconfig loader")
	}
	cfg, cluster, err := kubeConfig(s.Context)
	if err != nil {
		return KubernetesBackup{}, err
	}
	jobs := 8
	if s.Jobs > 0 {
		jobs = s.Jobs
	}
	return KubernetesBackup{Repo: repo, Config: cfg, Cluster: cluster, Tags: tags,
		Options: kube.BackupOptions{Filter: kube.Filter{IncludeNamespaces: s.IncludeNamespaces, ExcludeNamespaces: s.ExcludeNamespaces},
			ClusterResources: kube.ClusterAuto, Concurrency: jobs},
		Volumes: s.Volumes, Node: KubernetesNode{Node: a.getenv("NODE_NAME"), NodeRoot: s.NodeRoot}, AnnotationHooks: true}, nil
}
