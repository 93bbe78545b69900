package operator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AgentOptions configure the node agent.
type AgentOptions struct {
	// Runner backs up the volume files.
	Runner *InProcess
	// Node is this node: its name, root and kubelet directory.
	Node app.KubernetesNode
	// Namespace, when set, is the only namespace whose Backups are served.
	Namespace string
	// AdminNamespaces may reach other namespaces' volumes ("*": all).
	AdminNamespaces []string
	// Policy is the repository policy outside the admin namespaces.
	Policy *location.Policy
	// Warn and Print say what the agent does: a warning, a served Backup.
	Warn, Print func(format string, args ...any)
}

// Agent is the node agent: it backs up this node's volume files for the
// completed Backups with volumes: true (VolumeBackups).
type Agent struct {
	o  AgentOptions
	c  client.Client
	cs kubernetes.Interface
	// warned holds the refused Backups already warned about.
	warned map[types.UID]bool
}

// NewAgent returns the node agent of the cluster cfg reaches.
func NewAgent(cfg *rest.Config, o AgentOptions) (*Agent, error) {
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Agent{o: o, c: c, cs: cs, warned: map[types.UID]bool{}}, nil
}

// Run makes a pass every interval (one only with once) until ctx ends. A
// pass that fails is a warning: the next one tries again.
func (g *Agent) Run(ctx context.Context, interval time.Duration, once bool) error {
	for {
		if err := g.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			g.o.Warn("agent: %v", err)
		}
		if once {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Pass serves every completed volume Backup this node has not served
// yet. A Backup the tenancy rule refuses is skipped with a warning, once
// per process: it stays unserved, and later passes skip it too.
func (g *Agent) Pass(ctx context.Context) error {
	node := g.o.Node
	work, err := VolumeBackups(ctx, g.c, g.o.Namespace, node.Node, g.o.AdminNamespaces)
	if err != nil {
		return err
	}
	key := v1alpha1.AnnotationVolumesPrefix + node.Node
	for _, w := range work {
		b := w.Backup
		if w.Refused != nil {
			if !g.warned[b.UID] {
				g.warned[b.UID] = true
				g.o.Warn("agent: Backup %s/%s: skipped, its volumes are not backed up: %v", b.Namespace, b.Name, w.Refused)
			}
			continue
		}
		value := "none"
		filter := kube.Filter{IncludeNamespaces: w.Spec.IncludeNamespaces, ExcludeNamespaces: w.Spec.ExcludeNamespaces}
		vols, _, err := volume.Find(ctx, g.cs, node.FindOptions(filter.Namespace))
		if err != nil {
			return fmt.Errorf("Backup %s/%s: %w", b.Namespace, b.Name, err)
		}
		if len(vols) > 0 {
			if value, err = g.backup(ctx, b, w.Spec); err != nil {
				g.o.Warn("agent: Backup %s/%s: %v", b.Namespace, b.Name, err)
				continue
			}
		}
		patch := client.MergeFrom(b.DeepCopy())
		if b.Annotations == nil {
			b.Annotations = map[string]string{}
		}
		b.Annotations[key] = value
		if err := g.c.Patch(ctx, b, patch); err != nil {
			return fmt.Errorf("annotate Backup %s/%s: %w", b.Namespace, b.Name, err)
		}
		g.o.Print("Backup %s/%s: volumes of node %s: %s", b.Namespace, b.Name, node.Node, value)
	}
	return nil
}

// backup backs up this node's volumes for b, as spec (b's confined spec)
// selects them, and returns the snapshot ID.
func (g *Agent) backup(ctx context.Context, b *v1alpha1.Backup, spec v1alpha1.BackupSpec) (string, error) {
	policy := TenantPolicy(b.Namespace, g.o.AdminNamespaces, g.o.Policy)
	repo, err := ResolveRepository(ctx, g.c, b.Namespace, spec.Repository, policy)
	if err != nil {
		return "", err
	}
	node := g.o.Node
	id, err := g.o.Runner.volumeBackup(ctx, repo, app.KubernetesVolumeBackup{
		IncludeNamespaces: spec.IncludeNamespaces, ExcludeNamespaces: spec.ExcludeNamespaces, Node: node,
		Tags: []string{fmt.Sprintf("%s=%s/%s/%s", v1alpha1.TagBackup, b.Namespace, b.Name, b.UID), "bunker.dev/node=" + node.Node}})
	if err != nil {
		// The message only: the repository's secrets are redacted from it.
		return "", errors.New(repo.Redact(err.Error()))
	}
	return id, nil
}
