package operator

import (
	"fmt"
	"slices"
	"sort"

	"k8s.io/utils/ptr"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/storage/location"
)

// The tenancy rule (issue 15, findings 2 and 3): a Backup or Restore
// outside an admin namespace (Options.AdminNamespaces) is confined to its
// own namespace. It selects only its own namespace's objects (and so only
// its volumes), restores only into its own namespace, and never saves or
// restores cluster-scoped objects. A spec asking for more fails before
// anything runs, with a message naming what was refused.

// admin reports whether ns is an admin namespace.
func (o *Options) admin(ns string) bool {
	return slices.Contains(o.AdminNamespaces, "*") || slices.Contains(o.AdminNamespaces, ns)
}

// backupSpec is the spec b runs with: its own outside an admin
// namespace, else confined to b's namespace, or an error naming what the
// tenancy rule refuses.
func (o *Options) backupSpec(b *v1alpha1.Backup) (v1alpha1.BackupSpec, error) {
	spec := *b.Spec.DeepCopy()
	ns := b.Namespace
	if o.admin(ns) {
		return spec, nil
	}
	for _, n := range spec.IncludeNamespaces {
		if n != ns {
			return spec, fmt.Errorf("includeNamespaces: namespace %q refused: a Backup in %s may only select its own namespace (admin namespaces: %v)", n, ns, o.AdminNamespaces)
		}
	}
	if c := spec.IncludeClusterResources; c != nil && *c {
		return spec, fmt.Errorf("includeClusterResources: refused: a Backup in %s may not save cluster-scoped objects (admin namespaces: %v)", ns, o.AdminNamespaces)
	}
	spec.IncludeNamespaces = []string{ns}
	spec.IncludeClusterResources = ptr.To(false)
	return spec, nil
}

// TenantRestoreExcluded are the resources a Restore outside an admin
// namespace never restores.
var TenantRestoreExcluded = []string{"roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io"}

// TenantSchemes are the repository schemes a tenant may use by default.
// A local path would be a directory of the operator's or agent's own
// filesystem, and sftp needs key and known_hosts files, which a tenant's
// Secret cannot name.
var TenantSchemes = []string{"s3", "gs", "azure", "rest"}

// repositoryPolicy is the policy a repository in ns is opened under:
// none in an admin namespace, else RepositoryPolicy.
func (o *Options) repositoryPolicy(ns string) *location.Policy {
	return TenantPolicy(ns, o.AdminNamespaces, o.RepositoryPolicy)
}

// TenantPolicy is the policy a repository in ns is opened under with
// these admin namespaces: nil in an admin namespace, else p.
func TenantPolicy(ns string, adminNamespaces []string, p *location.Policy) *location.Policy {
	o := Options{AdminNamespaces: adminNamespaces}
	if o.admin(ns) {
		return nil
	}
	return p
}

// DefaultTenantPolicy is the policy of tenants' repositories when the
// administrator sets none: TenantSchemes, any host outside the loopback,
// link-local, unspecified and multicast ranges, no identity lent.
func DefaultTenantPolicy() *location.Policy {
	p, err := location.NewPolicy(location.PolicyOptions{Schemes: TenantSchemes})
	if err != nil {
		panic(err) // TenantSchemes are valid schemes
	}
	return p
}

// ConfineBackup is the spec b runs with under the tenancy rule with
// these admin namespaces ("*": all): the node agent applies it to a
// Backup's selection of volumes as the operator does.
func ConfineBackup(b *v1alpha1.Backup, adminNamespaces []string) (v1alpha1.BackupSpec, error) {
	o := Options{AdminNamespaces: adminNamespaces}
	return o.backupSpec(b)
}

// restoreSpec is the spec x runs with and its cluster-resources setting
// (nil: auto): x's own in an admin namespace, else confined to x's
// namespace (every object lands in it, cluster-scoped objects off), or an
// error naming what the tenancy rule refuses.
func (o *Options) restoreSpec(x *v1alpha1.Restore) (v1alpha1.RestoreSpec, *bool, error) {
	spec := *x.Spec.DeepCopy()
	ns := x.Namespace
	if o.admin(ns) {
		return spec, nil, nil
	}
	// The namespaces whose objects land in ns: ns itself unless it is
	// mapped away, and every namespace mapped to ns.
	from := map[string]bool{ns: true}
	keys := make([]string, 0, len(spec.NamespaceMapping))
	for k := range spec.NamespaceMapping {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		to := string(spec.NamespaceMapping[k])
		if to != ns {
			return spec, nil, fmt.Errorf("namespaceMapping: %s → %s: namespace %q refused: a Restore in %s may only restore into its own namespace (admin namespaces: %v)", k, to, to, ns, o.AdminNamespaces)
		}
		from[k] = true
	}
	for _, n := range spec.IncludeNamespaces {
		if !from[n] {
			return spec, nil, fmt.Errorf("includeNamespaces: namespace %q refused: a Restore in %s may only restore its own namespace or namespaces mapped to it (admin namespaces: %v)", n, ns, o.AdminNamespaces)
		}
	}
	// Roles and bindings come back only through an admin: created by the
	// operator, which may bind any role, a planted RoleBinding would
	// grant the tenant more than it holds in its own namespace.
	spec.ExcludeResources = append(spec.ExcludeResources, TenantRestoreExcluded...)
	if len(spec.IncludeNamespaces) == 0 {
		for n := range from {
			spec.IncludeNamespaces = append(spec.IncludeNamespaces, n)
		}
		sort.Strings(spec.IncludeNamespaces)
	}
	return spec, ptr.To(false), nil
}
