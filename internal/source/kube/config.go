package kube

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Conn says how to reach the API server: a kubeconfig file and context
// (both optional), read with the process environment Getenv.
type Conn struct {
	Kubeconfig string // default $KUBECONFIG, ~/.kube/config, then in-cluster
	Context    string // default: the kubeconfig's current context
	Getenv     func(string) string
	UserAgent  string // "bunker/<version>"
}

// Config loads the client configuration and names the cluster: the
// kubeconfig context's cluster, or "in-cluster".
func (c Conn) Config() (*rest.Config, string, error) {
	getenv := c.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.Kubeconfig}
	if c.Kubeconfig == "" {
		if env := getenv("KUBECONFIG"); env != "" {
			rules.Precedence = strings.Split(env, string(os.PathListSeparator))
		} else if home := getenv("HOME"); home != "" {
			rules.Precedence = []string{home + "/.kube/config"}
		}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context})
	raw, rawErr := cc.RawConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) && c.Kubeconfig == "" && c.Context == "" {
			if ic, icErr := rest.InClusterConfig(); icErr == nil {
				return c.tune(ic), "in-cluster", nil
			}
		}
		return nil, "", fmt.Errorf("kubernetes configuration: %w", err)
	}
	name := "cluster"
	if rawErr == nil {
		ctxName := raw.CurrentContext
		if c.Context != "" {
			ctxName = c.Context
		}
		if k, ok := raw.Contexts[ctxName]; ok && k.Cluster != "" {
			name = k.Cluster
		}
	}
	return c.tune(cfg), name, nil
}

// tune lifts client-go's client-side rate limit (5 requests/s): a
// backup lists each resource once, a restore writes each object once,
// and the API server's own fairness limits still apply.
func (c Conn) tune(cfg *rest.Config) *rest.Config {
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = c.UserAgent
	// Deprecation warnings for resources we only list are noise.
	cfg.WarningHandler = rest.NoWarnings{}
	return cfg
}
