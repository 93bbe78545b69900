package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// defaultExcluded are resources left out unless named in
// IncludeResources: they describe the cluster's running state (events,
// nodes, leases, IP address allocations), are rebuilt by controllers, or
// would start work again when restored (Bunker's own Backup and Restore
// requests).
var defaultExcluded = []string{
	"events", "events.events.k8s.io", "nodes", "componentstatuses",
	"leases.coordination.k8s.io", "csinodes.storage.k8s.io", "volumeattachments.storage.k8s.io",
	"ipaddresses.networking.k8s.io", "servicecidrs.networking.k8s.io",
	"backups.bunker.dev", "restores.bunker.dev",
}

// Discover returns every resource the server serves in its preferred
// version that supports list, get and create, with subresources left
// out, sorted by group and name. Groups whose discovery fails (an
// aggregated API that is down) are passed to warn and skipped.
func Discover(ctx context.Context, dc discovery.DiscoveryInterface, warn func(string)) ([]Resource, error) {
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		var gd *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &gd) || len(lists) == 0 {
			return nil, fmt.Errorf("discover API resources: %w", err)
		}
		for gv, gerr := range gd.Groups {
			warn(fmt.Sprintf("API group %s skipped: %v", gv, gerr))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			warn(fmt.Sprintf("API group version %q skipped: %v", l.GroupVersion, err))
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerbs(r.Verbs, "list", "get", "create") {
				continue
			}
			out = append(out, Resource{Group: gv.Group, Version: gv.Version, Resource: r.Name, Kind: r.Kind,
				Namespaced: r.Namespaced, ShortNames: r.ShortNames})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Resource < out[j].Resource
	})
	return out, nil
}

func hasVerbs(have metav1.Verbs, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func (r Resource) gvr() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
}

// statusSubresources returns the custom resources ("resource.group")
// whose CustomResourceDefinition declares a status subresource: their
// status is not restorable and is dropped. Custom resources without one
// keep their status, which is part of the object. When CRDs cannot be
// listed, it returns nil and every status is dropped.
func statusSubresources(ctx context.Context, dyn dynamic.Interface) map[string]bool {
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, crd := range list.Items {
		group := nestedString(crd.Object, "spec", "group")
		plural := nestedString(crd.Object, "spec", "names", "plural")
		versions, _ := nested(crd.Object, "spec", "versions").([]any)
		status := false
		for _, v := range versions {
			if vm, ok := v.(map[string]any); ok && nested(vm, "subresources", "status") != nil {
				status = true
			}
		}
		out[groupResource(group, plural)] = status
	}
	return out
}

// nested returns obj[k1][k2]…, or nil.
func nested(obj map[string]any, keys ...string) any {
	var cur any = obj
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// nestedString returns obj[k1][k2]… when it is a string, else "".
func nestedString(obj map[string]any, keys ...string) string {
	s, _ := nested(obj, keys...).(string)
	return s
}
