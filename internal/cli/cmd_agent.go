package cli

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/operator"
	"github.com/spf13/cobra"
)

// agentFlags are the flags of bunker agent.
type agentFlags struct {
	conn      kubeConnFlags
	tenant    tenantPolicyFlags
	node      app.KubernetesNode
	namespace string
	interval  time.Duration
	once      bool
	adminNS   []string
}

func (f *agentFlags) add(cmd *cobra.Command) {
	f.conn.add(cmd)
	fl := cmd.Flags()
	f.tenant.add(fl)
	fl.StringVar(&f.node.Node, "node", "", "this node's `name` (default $NODE_NAME)")
	fl.StringVar(&f.node.NodeRoot, "node-root", "", "where the node's root filesystem is mounted (default $BUNKER_NODE_ROOT, else /)")
	fl.StringVar(&f.node.KubeletDir, "kubelet-dir", "/var/lib/kubelet", "the kubelet's directory on the node")
	fl.StringSliceVar(&f.adminNS, "admin-namespace", nil, "`namespaces` whose Backups may reach other namespaces' volumes; \"*\" for all (default: $POD_NAMESPACE); elsewhere a Backup reaches only its own namespace's")
	fl.StringVar(&f.namespace, "namespace", "", "serve Backups of this `namespace` only (default: all)")
	fl.DurationVar(&f.interval, "interval", 15*time.Second, "look for work this often")
	flagRange(fl, 1, unbounded, "interval")
	fl.BoolVar(&f.once, "once", false, "one pass, then exit")
}

func (a *App) agentCommand() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: back up this node's volume files for Backups with volumes: true",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			node := f.node
			if node.Node == "" {
				node.Node = a.Getenv("NODE_NAME")
			}
			if node.NodeRoot == "" {
				node.NodeRoot = a.Getenv("BUNKER_NODE_ROOT")
			}
			if node.Node == "" {
				return fmt.Errorf("agent: the node's name is unknown: set --node or $NODE_NAME")
			}
			cfg, _, err := a.kubeConfig(&f.conn)
			if err != nil {
				return err
			}
			operator.SetGlobalLogger(a.slogger(slog.LevelWarn))
			policy, err := f.tenant.policy()
			if err != nil {
				return err
			}
			agent, err := operator.NewAgent(cfg, operator.AgentOptions{Runner: a.kubeRunner(&f.conn, true), Node: node,
				Namespace: f.namespace, AdminNamespaces: a.adminNamespaces(cmd, f.adminNS), Policy: policy,
				Warn: a.out.warnf, Print: a.out.textf})
			if err != nil {
				return err
			}
			return agent.Run(cmd.Context(), f.interval, f.once)
		},
	}
	f.add(cmd)
	return cmd
}
