package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExistingPolicy says what a restore does with an object that exists.
// +kubebuilder:validation:Enum=skip;update
type ExistingPolicy string

// Existing policies.
const (
	// ExistingSkip leaves existing objects alone (a restore run twice does
	// the same as once).
	ExistingSkip ExistingPolicy = "skip"
	// ExistingUpdate replaces existing objects with the backed-up ones.
	ExistingUpdate ExistingPolicy = "update"
)

// RestoreSpec is what to restore from which snapshot. Give either
// snapshot or backupName. It cannot change once the Restore exists.
// +kubebuilder:validation:XValidation:rule="has(self.snapshot) != has(self.backupName)",message="give exactly one of snapshot and backupName"
type RestoreSpec struct {
	// Repository is the name of a BackupRepository in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Repository string `json:"repository"`
	// Snapshot is "latest" or a snapshot ID (or a unique prefix of at
	// least 8 hex digits).
	// +kubebuilder:validation:Pattern=`^(latest|[0-9a-f]{8,64})$`
	// +optional
	Snapshot string `json:"snapshot,omitempty"`
	// BackupName takes the snapshot of this Backup (same namespace), which
	// must have completed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	BackupName string `json:"backupName,omitempty"`

	Selection `json:",inline"`

	// NamespaceMapping restores objects of namespace key into namespace
	// value.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	NamespaceMapping map[string]NamespaceName `json:"namespaceMapping,omitempty"`
	// Existing is what to do with objects that exist: skip (default) or
	// update.
	// +kubebuilder:default=skip
	// +optional
	Existing ExistingPolicy `json:"existing,omitempty"`
	// DryRun sends every object with a server-side dry run: nothing
	// changes, and the counts say what would happen.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// NamespaceName is the name of a namespace.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type NamespaceName string

// RestorePhase is where a Restore is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Completed;PartiallyFailed;Failed
type RestorePhase string

// Restore phases. Completed, PartiallyFailed and Failed are final.
const (
	RestorePending         RestorePhase = "Pending"
	RestoreRunning         RestorePhase = "Running"
	RestoreCompleted       RestorePhase = "Completed"
	RestorePartiallyFailed RestorePhase = "PartiallyFailed"
	RestoreFailed          RestorePhase = "Failed"
)

// RestoreStatus is the outcome of a Restore.
type RestoreStatus struct {
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// SnapshotID is the snapshot being restored, as requested ("latest"
	// or an ID) or taken from the Backup.
	// +optional
	SnapshotID string `json:"snapshotID,omitempty"`
	// Restored, Skipped and Failed count objects.
	// +optional
	Restored int `json:"restored,omitempty"`
	// +optional
	Skipped int `json:"skipped,omitempty"`
	// +optional
	Failed int `json:"failed,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Attempts counts the starts: more than 1 when the operator restarted
	// during the restore and ran it again.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Job is the Job running the restore (job mode).
	// +optional
	Job string `json:"job,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// Conditions: Completed, Failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Restore restores objects from a snapshot into the cluster. The
// operator runs it once; a Restore interrupted by an operator restart is
// run again, which with existing=skip is harmless.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=bunker
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.status.snapshotID`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Restored",type=integer,JSONPath=`.status.restored`
// +kubebuilder:printcolumn:name="Skipped",type=integer,JSONPath=`.status.skipped`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: create a new Restore"
	Spec   RestoreSpec   `json:"spec"`
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restores.
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Restore `json:"items"`
}
