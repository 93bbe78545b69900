package operator

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// The command lines of job mode. They are the contract with the CLI's
// `bunker backup kubernetes` and `bunker restore kubernetes`: every value
// is passed as --flag=value, so no value can be taken for another flag.
// The list flags split at commas; the CRD's patterns keep commas out of
// namespace and resource globs and tags.
const (
	flagIncludeNamespace = "--include-namespaces"
	flagExcludeNamespace = "--exclude-namespaces"
	flagIncludeResource  = "--include-resources"
	flagExcludeResource  = "--exclude-resources"
	flagSelector         = "--selector"
	flagClusterResources = "--cluster-resources" // auto (unset), on, off
	flagVolumes          = "--volumes"
	flagTag              = "--tag"
	flagNamespaceMapping = "--namespace-mapping"
	flagExisting         = "--existing"
	flagDryRun           = "--dry-run"
)

// exitPartial is the CLI's exit code for a partial restore.
const exitPartial = 3

// Environment of the Jobs' container.
const (
	envRepository = "BUNKER_REPOSITORY"
	envPassword   = "BUNKER_PASSWORD"
	envCacheDir   = "BUNKER_CACHE_DIR"
	cacheDir      = "/cache"
	// The repository policy of a tenant's Job (the CLI's --allow-schemes,
	// --allow-hosts and --no-ambient-credentials).
	envAllowSchemes = "BUNKER_ALLOW_SCHEMES"
	envAllowHosts   = "BUNKER_ALLOW_HOSTS"
	envNoAmbient    = "BUNKER_NO_AMBIENT_CREDENTIALS"
)

func selectionArgs(args []string, s v1alpha1.Selection) []string {
	for _, v := range s.IncludeNamespaces {
		args = append(args, flagIncludeNamespace+"="+v)
	}
	for _, v := range s.ExcludeNamespaces {
		args = append(args, flagExcludeNamespace+"="+v)
	}
	for _, v := range s.IncludeResources {
		args = append(args, flagIncludeResource+"="+v)
	}
	for _, v := range s.ExcludeResources {
		args = append(args, flagExcludeResource+"="+v)
	}
	if s.LabelSelector != "" {
		args = append(args, flagSelector+"="+s.LabelSelector)
	}
	return args
}

// BackupArgs is the bunker command line (after the program name) that
// runs a Backup: "backup kubernetes" and the spec as flags. tags are
// BackupRequest.Tags (with the operator's bunker.dev/backup tag). Job
// mode runs it; a Runner may too.
func BackupArgs(spec v1alpha1.BackupSpec, tags []string) []string {
	args := clusterArg(selectionArgs([]string{"backup", "kubernetes"}, spec.Selection), spec.IncludeClusterResources)
	if spec.Volumes {
		args = append(args, flagVolumes)
	}
	for _, t := range tags {
		args = append(args, flagTag+"="+t)
	}
	return args
}

// RestoreArgs is the bunker command line (after the program name) that
// runs a Restore of snapshot: "restore kubernetes", the spec as flags,
// then "--" and the snapshot, so that it is never read as a flag.
// cluster is RestoreRequest.ClusterResources.
func RestoreArgs(spec v1alpha1.RestoreSpec, snapshot string, cluster *bool) []string {
	args := clusterArg(selectionArgs([]string{"restore", "kubernetes"}, spec.Selection), cluster)
	keys := make([]string, 0, len(spec.NamespaceMapping))
	for k := range spec.NamespaceMapping {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, flagNamespaceMapping+"="+k+"="+string(spec.NamespaceMapping[k]))
	}
	existing := spec.Existing
	if existing == "" {
		existing = v1alpha1.ExistingSkip
	}
	args = append(args, flagExisting+"="+string(existing))
	if spec.DryRun {
		args = append(args, flagDryRun)
	}
	return append(args, "--", snapshot)
}

// clusterArg appends --cluster-resources=on|off to args, none when c
// is nil (auto).
func clusterArg(args []string, c *bool) []string {
	if c == nil {
		return args
	}
	v := "off"
	if *c {
		v = "on"
	}
	return append(args, flagClusterResources+"="+v)
}

// jobName is "bunker-<kind>-<name>-<attempt>", shortened with a hash of
// the name to the 63 characters a Job's name may have.
func jobName(kind, name string, attempt int32) string {
	suffix := "-" + strconv.Itoa(int(attempt))
	base := "bunker-" + kind + "-" + strings.ReplaceAll(name, ".", "-")
	if len(base)+len(suffix) > validation.DNS1123LabelMaxLength {
		sum := sha256.Sum256([]byte(name))
		h := "-" + hex.EncodeToString(sum[:4])
		base = strings.TrimRight(base[:validation.DNS1123LabelMaxLength-len(suffix)-len(h)], "-")
		base += h
	}
	return base + suffix
}

// jobLabels are the labels of a Job and its Pod.
func jobLabels(ownerLabel, ownerName string) map[string]string {
	l := map[string]string{labelManagedBy: managerName}
	if len(validation.IsValidLabelValue(ownerName)) == 0 {
		l[ownerLabel] = ownerName
	}
	return l
}

// newJob is a Job running bunker with args, owned by owner, with the
// repository's location and secrets in its environment: the password
// and the allowed backend variables (tenantEnvKeys) come from the Secrets
// through secretKeyRef, never as values in the Job.
func (o *Operator) newJob(owner client.Object, name, ownerLabel string, repo *v1alpha1.BackupRepository, args []string, partialExit bool) (*batchv1.Job, error) {
	key := repo.Spec.PasswordSecretRef.Key
	if key == "" {
		key = "password"
	}
	env := []corev1.EnvVar{
		{Name: envRepository, Value: repo.Spec.URL},
		{Name: envPassword, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: repo.Spec.PasswordSecretRef.Name}, Key: key,
		}}},
		{Name: envCacheDir, Value: cacheDir},
	}
	if p := o.opts.repositoryPolicy(owner.GetNamespace()); p != nil {
		// The tenant's repository policy holds in the Job as in the
		// operator (the tenant's Secret cannot set these: tenantEnvKeys).
		po := p.Options()
		env = append(env, corev1.EnvVar{Name: envAllowSchemes, Value: strings.Join(po.Schemes, ",")},
			corev1.EnvVar{Name: envAllowHosts, Value: strings.Join(po.Hosts, ",")})
		if !po.AmbientCredentials {
			env = append(env, corev1.EnvVar{Name: envNoAmbient, Value: "1"})
		}
	}
	if repo.Spec.EnvSecretRef != nil {
		// Only the allowed keys, each by name: never envFrom the tenant's
		// Secret, which would let it set any variable of the pod.
		for _, k := range TenantEnvKeys() {
			env = append(env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: repo.Spec.EnvSecretRef.Name}, Key: k, Optional: ptr.To(true),
			}}})
		}
	}
	rules := []batchv1.PodFailurePolicyRule{{
		// An evicted or preempted pod is not the backup's fault: run it
		// again rather than fail.
		Action:          batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
	}}
	if partialExit {
		rules = append(rules, batchv1.PodFailurePolicyRule{
			Action: batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{exitPartial},
			},
		})
	}
	labels := jobLabels(ownerLabel, owner.GetName())
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: owner.GetNamespace(), Labels: labels},
		Spec: batchv1.JobSpec{
			// A failed backup is not retried (see doc.go); the
			// pod-failure policy still re-runs disrupted pods.
			BackoffLimit:     ptr.To[int32](0),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: rules},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: o.opts.ServiceAccount,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "bunker",
						Image: o.opts.Image,
						Args:  args,
						Env:   env,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: cacheDir}},
					}},
					Volumes: []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	if err := controllerutil.SetControllerReference(owner, job, o.mgr.GetScheme()); err != nil {
		return nil, err
	}
	return job, nil
}

// jobOutcome reads a Job's final condition: done is false while it runs;
// partial says it failed with the CLI's partial exit code (through the
// pod-failure policy, whose message names the exit code).
func jobOutcome(j *batchv1.Job) (done, ok, partial bool, msg string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true, false, ""
		case batchv1.JobFailed:
			partial = c.Reason == batchv1.JobReasonPodFailurePolicy &&
				strings.Contains(c.Message, "exit code "+strconv.Itoa(exitPartial)+" ")
			msg = c.Message
			if msg == "" {
				msg = c.Reason
			}
			return true, false, partial, msg
		}
	}
	return false, false, false, ""
}
