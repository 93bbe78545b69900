package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/operator"
	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func (a *App) agentCommand() *cobra.Command {
	var (
		conn      kubeConnFlags
		vf        kubeVolumeFlags
		namespace string
		interval  time.Duration
		once      bool
		adminNS   []string
		tenant    tenantPolicyFlags
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: back up this node's volume files for Backups with volumes: true",
		Long: `Run the node agent (one per node, the DaemonSet in deploy/kubernetes/agent.yaml).

Every --interval it looks for Backup objects with spec.volumes true that
the operator has completed and that this node has not served yet. For each,
it backs up the files of the claims in the Backup's namespaces whose
volumes are on this node (hostPath, local, CSI through the kubelet's pod
directories) into the Backup's repository: one snapshot per node, tagged
like the Backup and bunker.dev/node=<node>, holding volumes/<ns>/<claim>/
and the claims. It then records the snapshot on the Backup as the
annotation volumes.bunker.dev/<node> ("none" when the node had none).

Outside the --admin-namespace namespaces a Backup reaches only its own
namespace's claims; one that selects another namespace or cluster-scoped
objects is skipped with a warning saying what was refused.

The node is $NODE_NAME (--node), its root filesystem is mounted at
$BUNKER_NODE_ROOT (--node-root). Restore a node's volume data on that node
with: bunker restore kubernetes SNAPSHOT --volumes-only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if vf.node == "" {
				vf.node = a.Getenv("NODE_NAME")
			}
			if !cmd.Flags().Changed("admin-namespace") {
				if ns := a.Getenv("POD_NAMESPACE"); ns != "" {
					adminNS = []string{ns}
				}
			}
			if vf.nodeRoot == "" {
				vf.nodeRoot = a.Getenv("BUNKER_NODE_ROOT")
			}
			if vf.node == "" {
				return fmt.Errorf("agent: the node's name is unknown: set --node or $NODE_NAME")
			}
			cfg, _, err := a.kubeConfig(&conn)
			if err != nil {
				return err
			}
			operator.SetGlobalLogger(slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
			if err != nil {
				return fmt.Errorf("kubernetes client: %w", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("kubernetes client: %w", err)
			}
			runner := &cliRunner{parent: a, conn: conn, nodeVolumes: true}
			policy, err := tenant.policy()
			if err != nil {
				return err
			}
			warned := map[types.UID]bool{}
			for {
				if err := a.agentPass(ctx, cs, c, runner, &vf, namespace, adminNS, policy, warned); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					a.out.warnf("agent: %v", err)
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
		},
	}
	conn.add(cmd)
	fl := cmd.Flags()
	tenant.add(fl)
	fl.StringVar(&vf.node, "node", "", "this node's `name` (default $NODE_NAME)")
	fl.StringVar(&vf.nodeRoot, "node-root", "", "where the node's root filesystem is mounted (default $BUNKER_NODE_ROOT, else /)")
	fl.StringVar(&vf.kubeletDir, "kubelet-dir", "/var/lib/kubelet", "the kubelet's directory on the node")
	fl.StringSliceVar(&adminNS, "admin-namespace", nil, "`namespaces` whose Backups may reach other namespaces' volumes; \"*\" for all (default: $POD_NAMESPACE); elsewhere a Backup reaches only its own namespace's")
	fl.StringVar(&namespace, "namespace", "", "serve Backups of this `namespace` only (default: all)")
	fl.DurationVar(&interval, "interval", 15*time.Second, "look for work this often")
	flagRange(fl, 1, unbounded, "interval")
	fl.BoolVar(&once, "once", false, "one pass, then exit")
	return cmd
}

// agentPass serves every completed volume Backup this node has not
// served yet (operator.VolumeBackups). A Backup the tenancy rule refuses
// is skipped with a warning, once per process (warned holds those
// warned about): it stays unserved, and later passes skip it too.
func (a *App) agentPass(ctx context.Context, cs kubernetes.Interface, c client.Client, runner *cliRunner, vf *kubeVolumeFlags, namespace string, adminNS []string, policy *location.Policy, warned map[types.UID]bool) error {
	work, err := operator.VolumeBackups(ctx, c, namespace, vf.node, adminNS)
	if err != nil {
		return err
	}
	key := v1alpha1.AnnotationVolumesPrefix + vf.node
	for _, w := range work {
		b := w.Backup
		if w.Refused != nil {
			if !warned[b.UID] {
				warned[b.UID] = true
				a.out.warnf("agent: Backup %s/%s: skipped, its volumes are not backed up: %v", b.Namespace, b.Name, w.Refused)
			}
			continue
		}
		value := "none"
		filter := kube.Filter{IncludeNamespaces: w.Spec.IncludeNamespaces, ExcludeNamespaces: w.Spec.ExcludeNamespaces}
		node := a.agentNode(vf)
		vols, _, err := volume.Find(ctx, cs, node.FindOptions(filter.Namespace))
		if err != nil {
			return fmt.Errorf("Backup %s/%s: %w", b.Namespace, b.Name, err)
		}
		if len(vols) > 0 {
			if value, err = a.agentBackup(ctx, c, runner, node, b, w.Spec, operator.TenantPolicy(b.Namespace, adminNS, policy)); err != nil {
				a.out.warnf("agent: Backup %s/%s: %v", b.Namespace, b.Name, err)
				continue
			}
		}
		patch := client.MergeFrom(b.DeepCopy())
		if b.Annotations == nil {
			b.Annotations = map[string]string{}
		}
		b.Annotations[key] = value
		if err := c.Patch(ctx, b, patch); err != nil {
			return fmt.Errorf("annotate Backup %s/%s: %w", b.Namespace, b.Name, err)
		}
		a.out.textf("Backup %s/%s: volumes of node %s: %s", b.Namespace, b.Name, vf.node, value)
	}
	return nil
}

// agentNode is the agent's node: its name, root and kubelet directory.
func (a *App) agentNode(vf *kubeVolumeFlags) app.KubernetesNode {
	return app.KubernetesNode{Node: vf.node, NodeRoot: vf.nodeRoot, KubeletDir: vf.kubeletDir}
}

// agentBackup backs up this node's volumes for b, as spec (b's confined
// spec) selects them, and returns the snapshot ID.
func (a *App) agentBackup(ctx context.Context, c client.Client, runner *cliRunner, node app.KubernetesNode, b *v1alpha1.Backup, spec v1alpha1.BackupSpec, policy *location.Policy) (string, error) {
	repo, err := operator.ResolveRepository(ctx, c, b.Namespace, spec.Repository, policy)
	if err != nil {
		return "", err
	}
	id, err := runner.volumeBackup(ctx, repo, app.KubernetesVolumeBackup{
		IncludeNamespaces: spec.IncludeNamespaces, ExcludeNamespaces: spec.ExcludeNamespaces, Node: node,
		Tags: []string{fmt.Sprintf("%s=%s/%s/%s", v1alpha1.TagBackup, b.Namespace, b.Name, b.UID), "bunker.dev/node=" + node.Node}})
	if err != nil {
		// The message only: the repository's secrets are redacted from it.
		return "", errors.New(repo.Redact(err.Error()))
	}
	return id, nil
}
