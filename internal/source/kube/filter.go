package kube

import (
	"fmt"
	"path"
	"strings"
)

// Resource is one kind of object the API server serves.
type Resource struct {
	Group      string   `json:"group"` // "" for the core group
	Version    string   `json:"version"`
	Resource   string   `json:"resource"` // plural, e.g. "deployments"
	Kind       string   `json:"kind"`
	Namespaced bool     `json:"namespaced"`
	ShortNames []string `json:"short_names,omitempty"`
	Count      int      `json:"count"` // objects backed up
}

// GroupResource is "resource.group", or "resource" for the core group.
func (r Resource) GroupResource() string { return groupResource(r.Group, r.Resource) }

func groupResource(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

// dirGroup is the directory name of a group in the snapshot tree.
func dirGroup(group string) string {
	if group == "" {
		return "core"
	}
	return group
}

// treeGroup is the group a directory name stands for.
func treeGroup(dir string) string {
	if dir == "core" {
		return ""
	}
	return dir
}

// Filter selects namespaces and resources. Patterns are shell globs
// (path.Match); an empty include list includes everything.
type Filter struct {
	IncludeNamespaces []string
	ExcludeNamespaces []string
	// IncludeResources and ExcludeResources name resources as
	// "resource", "resource.group", a kind or a short name, or globs of
	// those ("*.example.com").
	IncludeResources []string
	ExcludeResources []string
}

// Validate checks every pattern.
func (f *Filter) Validate() error {
	for _, l := range [][]string{f.IncludeNamespaces, f.ExcludeNamespaces, f.IncludeResources, f.ExcludeResources} {
		for _, p := range l {
			if p == "" {
				return fmt.Errorf("empty pattern")
			}
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("bad pattern %q: %w", p, err)
			}
		}
	}
	return nil
}

// Namespace reports whether the namespace ns is selected.
func (f *Filter) Namespace(ns string) bool {
	if len(f.IncludeNamespaces) > 0 && !matchAny(f.IncludeNamespaces, ns) {
		return false
	}
	return !matchAny(f.ExcludeNamespaces, ns)
}

// NamespacesFiltered reports whether some namespaces are left out.
func (f *Filter) NamespacesFiltered() bool {
	return len(f.IncludeNamespaces) > 0 || len(f.ExcludeNamespaces) > 0
}

// LiteralNamespaces returns the included namespaces when they are all
// plain names (no glob), so each can be listed on its own; nil otherwise.
func (f *Filter) LiteralNamespaces() []string {
	if len(f.IncludeNamespaces) == 0 {
		return nil
	}
	for _, p := range f.IncludeNamespaces {
		if strings.ContainsAny(p, `*?[\`) {
			return nil
		}
	}
	return f.IncludeNamespaces
}

// Resource reports whether the resource r is selected.
func (f *Filter) Resource(r Resource) bool {
	if len(f.IncludeResources) > 0 && !matchResource(f.IncludeResources, r) {
		return false
	}
	return !matchResource(f.ExcludeResources, r)
}

func matchResource(patterns []string, r Resource) bool {
	names := []string{r.Resource, r.GroupResource(), strings.ToLower(r.Kind)}
	if r.Kind != "" && r.Group != "" {
		names = append(names, strings.ToLower(r.Kind)+"."+r.Group)
	}
	names = append(names, r.ShortNames...)
	for _, p := range patterns {
		p = strings.ToLower(p)
		for _, n := range names {
			if ok, _ := path.Match(p, n); ok {
				return true
			}
		}
	}
	return false
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// ParseMapping parses "old=new" namespace mappings.
func ParseMapping(list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, item := range list {
		for _, kv := range strings.Split(item, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			from, to, ok := strings.Cut(kv, "=")
			if !ok || from == "" || to == "" {
				return nil, fmt.Errorf("namespace mapping %q: want old=new", kv)
			}
			if err := validName(to); err != nil {
				return nil, fmt.Errorf("namespace mapping %q: %w", kv, err)
			}
			if prev, dup := m[from]; dup && prev != to {
				return nil, fmt.Errorf("namespace mapping: %s is mapped twice (to %s and %s)", from, prev, to)
			}
			m[from] = to
		}
	}
	return m, nil
}

// validName checks a namespace name (an RFC 1123 label).
func validName(s string) error {
	if len(s) > 63 {
		return fmt.Errorf("namespace %q is longer than 63 characters", s)
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(s)-1
		if !ok {
			return fmt.Errorf("namespace %q is not a DNS label (lower-case letters, digits and inner '-')", s)
		}
	}
	return nil
}

// Wanted reports whether a backup or restore takes resource r: the filter
// selects it, and it is not one of the resources left out by default
// (events, nodes, leases, Bunker's own Backup and Restore requests…),
// unless IncludeResources names it exactly. A restore applies the same
// rule, so a snapshot holding Restore objects does not make the operator
// run them.
func (f *Filter) Wanted(r Resource) bool {
	if !f.Resource(r) {
		return false
	}
	if matchResource(defaultExcluded, r) {
		for _, p := range f.IncludeResources {
			if !strings.ContainsAny(p, `*?[`) && matchResource([]string{p}, r) {
				return true
			}
		}
		return false
	}
	return true
}
