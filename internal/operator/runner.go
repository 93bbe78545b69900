package operator

import (
	"context"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/storage/location"
)

// Repo is a repository with its secrets resolved: what the Runner needs
// to open it. Password and the Env values are secret: a Runner must not
// put them in errors or logs.
type Repo struct {
	URL      string
	Password string
	Env      map[string]string // the keys of spec.envSecretRef, all in tenantEnvKeys
	// Policy, when set, is what the repository may reach: the Runner
	// opens it under this policy (a tenant's; nil in an admin namespace).
	Policy *location.Policy
}

// BackupRequest is one backup to run.
type BackupRequest struct {
	Repo Repo
	Spec v1alpha1.BackupSpec
	// Tags are Spec.Tags plus "bunker.dev/backup=<ns>/<name>/<uid>", which
	// FindBackup looks for after an operator restart.
	Tags []string
}

// BackupResult is what a backup committed.
type BackupResult struct {
	SnapshotID string
	Objects    int
	BytesAdded int64
}

// RestoreRequest is one restore to run.
type RestoreRequest struct {
	Repo Repo
	// Snapshot is "latest" or a snapshot ID (or prefix).
	Snapshot string
	Spec     v1alpha1.RestoreSpec
	// ClusterResources says whether cluster-scoped objects are restored;
	// nil is auto. The operator sets it false for a Restore confined to
	// its namespace.
	ClusterResources *bool
}

// RestoreResult counts objects. Partial is true when some objects could
// not be restored (the CLI's exit code 3); Failed > 0 implies it.
type RestoreResult struct {
	Restored, Skipped, Failed int
	Partial                   bool
}

// Runner does the operator's work: the operator only decides when.
// InProcess implements it with the use cases; tests use a fake.
//
// Every method must return when ctx ends. The operator calls Backup and
// Restore from its own goroutines, at most Options.Concurrency at once,
// and Check and FindBackup from at most Options.Concurrency more. A
// Backup or Restore that returns after ctx ended is taken as interrupted,
// not failed: the next operator start finishes it.
type Runner interface {
	// Check opens the repository (reads its config with the password)
	// and returns why it cannot.
	Check(ctx context.Context, repo Repo) error
	// Backup saves the cluster as req.Spec says into one snapshot tagged
	// with every req.Tags. It commits a snapshot only when it returns nil.
	Backup(ctx context.Context, req BackupRequest) (BackupResult, error)
	// FindBackup returns the snapshot tagged tag, if a backup with that
	// tag was already saved (Objects and BytesAdded may be zero when the
	// snapshot does not record them).
	FindBackup(ctx context.Context, repo Repo, tag string) (BackupResult, bool, error)
	// Restore restores req.Snapshot as req.Spec says. An error means
	// nothing useful happened; objects that failed individually are
	// counted in the result instead.
	Restore(ctx context.Context, req RestoreRequest) (RestoreResult, error)
}
