package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupSpec is what to back up and where to. It cannot change once the
// Backup exists.
type BackupSpec struct {
	// Repository is the name of a BackupRepository in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Repository string `json:"repository"`

	Selection `json:",inline"`

	// IncludeClusterResources says whether cluster-scoped objects
	// (namespaces, CRDs, cluster roles, persistent volumes…) are saved.
	// Unset: all of them when no namespace filter is given, else those the
	// selected objects need.
	// +optional
	IncludeClusterResources *bool `json:"includeClusterResources,omitempty"`
	// Volumes also saves the data of PersistentVolumeClaims (through the
	// node agent).
	// +optional
	Volumes bool `json:"volumes,omitempty"`
	// Tags are added to the snapshot.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:Pattern=`^[^,\s]+$`
	// +optional
	Tags []string `json:"tags,omitempty"`
}

// BackupPhase is where a Backup is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Completed;Failed
type BackupPhase string

// Backup phases. Completed and Failed are final.
const (
	BackupPending   BackupPhase = "Pending"
	BackupRunning   BackupPhase = "Running"
	BackupCompleted BackupPhase = "Completed"
	BackupFailed    BackupPhase = "Failed"
)

// BackupStatus is the outcome of a Backup.
type BackupStatus struct {
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`
	// SnapshotID is the snapshot the backup committed.
	// +optional
	SnapshotID string `json:"snapshotID,omitempty"`
	// StartTime is when the first attempt started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// CompletionTime is when the backup completed or failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Objects is how many Kubernetes objects the snapshot holds.
	// +optional
	Objects int `json:"objects,omitempty"`
	// BytesAdded is what the snapshot added to the repository after
	// deduplication and compression.
	// +optional
	BytesAdded int64 `json:"bytesAdded,omitempty"`
	// Attempts counts the starts: more than 1 when the operator restarted
	// during the backup and ran it again.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Job is the Job running the backup (job mode).
	// +optional
	Job string `json:"job,omitempty"`
	// Message says what is happening, or why the backup failed.
	// +optional
	Message string `json:"message,omitempty"`
	// Conditions: Completed, Failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Backup is one backup of the cluster's objects (and optionally volume
// data) into a BackupRepository. The operator runs it once: a Completed
// or Failed Backup is never run again.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=bunker
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.status.snapshotID`
// +kubebuilder:printcolumn:name="Objects",type=integer,JSONPath=`.status.objects`
// +kubebuilder:printcolumn:name="Added",type=integer,JSONPath=`.status.bytesAdded`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: create a new Backup"
	Spec   BackupSpec   `json:"spec"`
	Status BackupStatus `json:"status,omitempty"`
}

// BackupList is a list of Backups.
// +kubebuilder:object:root=true
type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backup `json:"items"`
}
