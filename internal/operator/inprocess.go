package operator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"k8s.io/client-go/rest"
)

// InProcess is the Runner that runs backups and restores in this process
// through the use cases (app.RunKubernetesBackup, RunKubernetesRestore),
// each with the repository's password in its request and its backends
// confined to the repository's own environment and policy. The node
// agent (Agent) backs up volume files with it too.
type InProcess struct {
	// Core is the use cases' App of this process (its storage options,
	// logger, events); each run works on a copy confined to its tenant.
	Core func() (*app.App, error)
	// Getenv is this process's environment.
	Getenv func(string) string
	// Kube reaches the cluster.
	Kube kube.Conn
	// NodeVolumes backs up the volume files this process can reach; off,
	// Backups with volumes: true leave them to the node agents.
	NodeVolumes bool
}

// hiddenVars are the password and repository settings of this process,
// which no tenant's run may use.
var hiddenVars = map[string]bool{
	"BUNKER_PASSWORD": true, "BUNKER_PASSWORD_FILE": true, "BUNKER_PASSWORD_COMMAND": true,
	"BUNKER_REPOSITORY": true, "BUNKER_REPOSITORY_FILE": true, "BUNKER_NEW_PASSWORD": true,
	"BUNKER_FROM_PASSWORD": true, "BUNKER_FROM_PASSWORD_FILE": true, "BUNKER_FROM_PASSWORD_COMMAND": true,
	"BUNKER_FROM_REPOSITORY": true, "BUNKER_FROM_REPOSITORY_FILE": true,
}

// core is the use cases' App for repo. Its backends see only repo.Env
// (the allowed keys of the tenant's env Secret) and repo.Policy: nothing
// of the operator's own credentials, home directory or key files. The
// tenant's keys never reach the rest of the use case, so none of them is
// control (no password command, no repository, no kubeconfig, no node
// root); the password is repo's, passed in the request, and the
// operator's own password settings are hidden too.
func (r *InProcess) core(repo Repo) (*app.App, error) {
	c, err := r.Core()
	if err != nil {
		return nil, err
	}
	t := c.With(nil)
	t.Getenv = func(k string) string {
		if hiddenVars[k] {
			return ""
		}
		return r.getenv(k)
	}
	t.Storage.Getenv = repo.Getenv
	if repo.Policy != nil {
		t.Storage.Policy = repo.Policy
	}
	return t, nil
}

func (r *InProcess) getenv(k string) string {
	if r.Getenv == nil {
		return ""
	}
	return r.Getenv(k)
}

// open is the use cases' App for repo, the repository's reference, and
// the cluster configuration and cluster name.
func (r *InProcess) open(repo Repo) (*app.App, app.Repo, *rest.Config, string, error) {
	if repo.Password == "" {
		return nil, app.Repo{}, nil, "", fmt.Errorf("repository %s: empty password", repo.URL)
	}
	c, err := r.core(repo)
	if err != nil {
		return nil, app.Repo{}, nil, "", err
	}
	cfg, cluster, err := r.Kube.Config()
	if err != nil {
		return nil, app.Repo{}, nil, "", err
	}
	return c, app.Repo{Location: repo.URL, Password: repo.Password}, cfg, cluster, nil
}

// failed is the error of a use case that returned err: the context's
// when it ended (interrupted, not failed), else err, cause and all (a
// wrong password stays repository.ErrWrongPassword for the status).
func failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Check opens the repository: its location, credentials and password.
func (r *InProcess) Check(ctx context.Context, repo Repo) error {
	c, err := r.core(repo)
	if err != nil {
		return err
	}
	ctx, done := app.WithScope(ctx)
	defer done()
	_, err = c.Open(ctx, app.Repo{Location: repo.URL, Password: repo.Password})
	return err
}

// kubeSelection is the filter of a Backup's or Restore's selection.
func kubeSelection(s v1alpha1.Selection) kube.Filter {
	return kube.Filter{IncludeNamespaces: s.IncludeNamespaces, ExcludeNamespaces: s.ExcludeNamespaces,
		IncludeResources: s.IncludeResources, ExcludeResources: s.ExcludeResources}
}

// kubeClusterMode is the cluster-resources mode of c: nil is auto.
func kubeClusterMode(c *bool) string {
	switch {
	case c == nil:
		return kube.ClusterAuto
	case *c:
		return kube.ClusterOn
	}
	return kube.ClusterOff
}

// Backup runs the Backup as 'bunker backup kubernetes' would with its
// defaults: eight resources listed at once, the pods' annotation hooks,
// and with volumes (when this process backs them up), those of $NODE_NAME.
func (r *InProcess) Backup(ctx context.Context, req BackupRequest) (BackupResult, error) {
	c, repo, cfg, cluster, err := r.open(req.Repo)
	if err != nil {
		return BackupResult{}, err
	}
	spec := req.Spec
	ctx, done := app.WithScope(ctx)
	defer done()
	res, err := c.RunKubernetesBackup(ctx, app.KubernetesBackup{Repo: repo, Config: cfg, Cluster: cluster, Tags: req.Tags,
		Options: kube.BackupOptions{Filter: kubeSelection(spec.Selection), LabelSelector: spec.LabelSelector,
			ClusterResources: kubeClusterMode(spec.IncludeClusterResources), Concurrency: 8},
		Volumes: spec.Volumes && r.NodeVolumes, Node: app.KubernetesNode{Node: r.getenv("NODE_NAME")}, AnnotationHooks: true})
	if err != nil {
		return BackupResult{}, failed(ctx, err)
	}
	return backupResult(res.Snapshot), nil
}

// backupResult is what the operator records of a Kubernetes backup.
func backupResult(s *snapshot.Snapshot) BackupResult {
	res := BackupResult{SnapshotID: s.ID.String()}
	fmt.Sscan(s.Metadata["kubernetes_objects"], &res.Objects)
	if s.Summary != nil {
		res.BytesAdded = s.Summary.BytesAdded
	}
	return res
}

// volumeBackup runs the node agent's backup of this node's volume files
// into repo and returns the snapshot's ID.
func (r *InProcess) volumeBackup(ctx context.Context, repo Repo, b app.KubernetesVolumeBackup) (string, error) {
	c, ref, cfg, cluster, err := r.open(repo)
	if err != nil {
		return "", err
	}
	b.Repo, b.Config, b.Cluster = ref, cfg, cluster
	ctx, done := app.WithScope(ctx)
	defer done()
	res, err := c.RunKubernetesVolumeBackup(ctx, b)
	if err != nil {
		return "", failed(ctx, err)
	}
	return res.Snapshot.ID.String(), nil
}

// FindBackup finds the newest snapshot tagged tag.
func (r *InProcess) FindBackup(ctx context.Context, repo Repo, tag string) (BackupResult, bool, error) {
	c, err := r.core(repo)
	if err != nil {
		return BackupResult{}, false, err
	}
	ctx, done := app.WithScope(ctx)
	defer done()
	rp, err := c.Open(ctx, app.Repo{Location: repo.URL, Password: repo.Password})
	if err != nil {
		return BackupResult{}, false, fmt.Errorf("list snapshots: %w", err)
	}
	all, err := c.LoadSnapshots(ctx, rp)
	if err != nil {
		return BackupResult{}, false, fmt.Errorf("list snapshots: %w", err)
	}
	list := snapshot.Filter{Tags: []string{tag}}.Apply(all)
	if len(list) == 0 {
		return BackupResult{}, false, nil
	}
	return backupResult(list[len(list)-1]), true, nil
}

// Restore runs the Restore as 'bunker restore kubernetes' would with its
// defaults: eight objects applied at once, a minute for new CRDs to be
// served, no privilege-granting objects.
func (r *InProcess) Restore(ctx context.Context, req RestoreRequest) (RestoreResult, error) {
	c, repo, cfg, _, err := r.open(req.Repo)
	if err != nil {
		return RestoreResult{}, err
	}
	spec := req.Spec
	var mapping map[string]string
	if len(spec.NamespaceMapping) > 0 {
		mapping = make(map[string]string, len(spec.NamespaceMapping))
		for from, to := range spec.NamespaceMapping {
			mapping[from] = string(to)
		}
	}
	existing := string(spec.Existing)
	if existing == "" {
		existing = kube.ExistingSkip
	}
	ctx, done := app.WithScope(ctx)
	defer done()
	res, err := c.RunKubernetesRestore(ctx, app.KubernetesRestore{Repo: repo, Snapshot: req.Snapshot, Config: cfg,
		Options: kube.RestoreOptions{Filter: kubeSelection(spec.Selection), LabelSelector: spec.LabelSelector,
			ClusterResources: kubeClusterMode(req.ClusterResources), NamespaceMapping: mapping, Existing: existing,
			DryRun: spec.DryRun, Concurrency: 8, CRDTimeout: time.Minute}})
	var pe *app.PartialError
	if err != nil && !errors.As(err, &pe) {
		return RestoreResult{}, failed(ctx, err)
	}
	s := res.Summary
	return RestoreResult{Restored: s.Created + s.Updated, Skipped: s.Skipped + s.Unchanged, Failed: s.Failed,
		Partial: pe != nil}, nil
}
