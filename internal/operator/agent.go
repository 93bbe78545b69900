package operator

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// VolumeBackup is a Backup whose volumes the node agent has to back up.
type VolumeBackup struct {
	// Backup is the object as stored.
	Backup *v1alpha1.Backup
	// Spec is what the node backs up for it: the Backup's spec confined
	// by the tenancy rule (ConfineBackup). Unset when Refused is.
	Spec v1alpha1.BackupSpec
	// Refused, when set, is why the tenancy rule refuses the Backup: the
	// node backs up nothing for it, and does not mark it served.
	Refused error
}

// VolumeBackups returns the Backups of namespace ("" for all) whose
// volumes the node agent on node has still to back up: Completed, with
// volumes: true, and without the annotation
// v1alpha1.AnnotationVolumesPrefix+node. Each comes with the spec it runs
// with under the tenancy rule for these admin namespaces ("*": all), or
// the reason the rule refuses it.
//
// The operator fails a Backup the rule refuses before it runs, so a
// refused one here was completed by an operator with wider admin
// namespaces than the agent's, or under no rule at all: the agent applies
// its own rule rather than trust the phase.
func VolumeBackups(ctx context.Context, c client.Reader, namespace, node string, adminNamespaces []string) ([]VolumeBackup, error) {
	var list v1alpha1.BackupList
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := c.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("list Backups: %w", err)
	}
	key := v1alpha1.AnnotationVolumesPrefix + node
	var out []VolumeBackup
	for i := range list.Items {
		b := &list.Items[i]
		if !b.Spec.Volumes || b.Status.Phase != v1alpha1.BackupCompleted || b.Annotations[key] != "" {
			continue
		}
		spec, err := ConfineBackup(b, adminNamespaces)
		if err != nil {
			out = append(out, VolumeBackup{Backup: b, Refused: err})
			continue
		}
		out = append(out, VolumeBackup{Backup: b, Spec: spec})
	}
	return out, nil
}
