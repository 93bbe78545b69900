package operator

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// maxScheduleName is the longest name of a Schedule (the CRD's CEL rule):
// its Backups add 15 characters, and their names must fit in the 63 of a
// label value and of a Job's name.
const maxScheduleName = 48

// checkBackup returns why b may not run at all, or nil: a spec the CRD
// refuses (checkSpec), a label selector the API server could not check,
// or a selection the tenancy rule refuses (backupSpec).
func (o *Options) checkBackup(b *v1alpha1.Backup) error {
	if err := checkSpec("Backup", &b.Spec); err != nil {
		return err
	}
	if _, err := labels.Parse(b.Spec.LabelSelector); err != nil {
		return &refusedError{msg: fmt.Sprintf("labelSelector %q: %v", b.Spec.LabelSelector, err)}
	}
	_, err := o.backupSpec(b)
	return err
}

// checkSchedule returns why s may create no Backup, or nil: a name or
// spec the CRD refuses, or a template every Backup of s would fail with
// (checkBackup of b, a Backup of s but for its name: the tenancy rule
// applies to b's namespace, which is s's).
func (o *Options) checkSchedule(s *v1alpha1.Schedule, b *v1alpha1.Backup) error {
	if n := len(s.Name); n > maxScheduleName {
		return &refusedError{msg: fmt.Sprintf("metadata.name: %d characters, more than %d (its Backups add 15)", n, maxScheduleName)}
	}
	if err := checkSpec("Schedule", &s.Spec); err != nil {
		return err
	}
	if err := o.checkBackup(b); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	return nil
}

// checkRepository returns why the BackupRepository r cannot be used as
// stored (a refusedError), or nil.
func checkRepository(r *v1alpha1.BackupRepository) error {
	if err := checkSpec("BackupRepository", &r.Spec); err != nil {
		return fmt.Errorf("BackupRepository %s/%s: %w", r.Namespace, r.Name, err)
	}
	return nil
}
