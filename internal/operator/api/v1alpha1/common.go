package v1alpha1

// Condition types used in status.conditions.
const (
	// ConditionReady: a BackupRepository could be opened; a Schedule's
	// schedule parses and it creates Backups.
	ConditionReady = "Ready"
	// ConditionCompleted: a Backup or Restore finished (True), or is still
	// to finish (Unknown), or ended in failure (False).
	ConditionCompleted = "Completed"
	// ConditionFailed: a Backup or Restore failed (True).
	ConditionFailed = "Failed"
)

// Labels and tags the operator sets.
const (
	// LabelSchedule is set on Backups a Schedule created: the Schedule's name.
	LabelSchedule = "bunker.dev/schedule"
	// LabelBackup and LabelRestore are set on the Jobs of job mode: the
	// owner's name.
	LabelBackup  = "bunker.dev/backup"
	LabelRestore = "bunker.dev/restore"
	// TagBackup prefixes the snapshot tag that ties a snapshot to the
	// Backup object that made it: "bunker.dev/backup=<ns>/<name>/<uid>".
	TagBackup = "bunker.dev/backup"
	// AnnotationVolumesPrefix prefixes the annotation the node agent sets
	// on a Backup when it has backed up its node's volumes for it:
	// "volumes.bunker.dev/<node>", the snapshot ID or "none".
	AnnotationVolumesPrefix = "volumes.bunker.dev/"
)

// SecretKeyRef selects one key of a Secret in the referring object's
// namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Key in the Secret's data; default "password".
	// +kubebuilder:default=password
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// SecretRef names a Secret in the referring object's namespace.
type SecretRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// Selection chooses what a Backup saves or a Restore restores. Globs use
// path.Match syntax (*, ?, [a-z], [^a-z]); an empty include list means all.
type Selection struct {
	// IncludeNamespaces are globs of namespaces to include (empty: all).
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[-a-z0-9*?\[\]^]+$`
	// +optional
	IncludeNamespaces []string `json:"includeNamespaces,omitempty"`
	// ExcludeNamespaces are globs of namespaces to leave out.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[-a-z0-9*?\[\]^]+$`
	// +optional
	ExcludeNamespaces []string `json:"excludeNamespaces,omitempty"`
	// IncludeResources are globs of resources to include, as plural
	// resource names optionally with their group: "deployments.apps",
	// "configmaps", "*.cert-manager.io" (empty: all).
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[-a-zA-Z0-9.*?\[\]^]+$`
	// +optional
	IncludeResources []string `json:"includeResources,omitempty"`
	// ExcludeResources are globs of resources to leave out.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[-a-zA-Z0-9.*?\[\]^]+$`
	// +optional
	ExcludeResources []string `json:"excludeResources,omitempty"`
	// LabelSelector selects objects by label, in kubectl syntax
	// ("app=web,tier!=cache").
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LabelSelector string `json:"labelSelector,omitempty"`
}
