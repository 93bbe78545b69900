package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupRepositorySpec says where a repository is and how to open it.
type BackupRepositorySpec struct {
	// URL is the repository location as the bunker command line takes it:
	// "s3:https://host/bucket/prefix", "sftp:user@host:/path",
	// "azure:…", "gs:…", "rest:https://…", or an absolute path.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(/|(local|s3|sftp|azure|gs|rest):[^\s])\S*$`
	URL string `json:"url"`
	// PasswordSecretRef is the Secret key holding the repository password.
	PasswordSecretRef SecretKeyRef `json:"passwordSecretRef"`
	// EnvSecretRef is a Secret of storage backend credential values
	// (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, …; docs/OPERATOR.md lists
	// the allowed keys). Any other key fails the object.
	// +optional
	EnvSecretRef *SecretRef `json:"envSecretRef,omitempty"`
}

// RepositoryPhase is whether the repository could be opened.
// +kubebuilder:validation:Enum=Ready;Failed
type RepositoryPhase string

// Repository phases.
const (
	RepositoryReady  RepositoryPhase = "Ready"
	RepositoryFailed RepositoryPhase = "Failed"
)

// BackupRepositoryStatus is the result of the last check.
type BackupRepositoryStatus struct {
	// Phase is Ready when the last check opened the repository.
	// +optional
	Phase RepositoryPhase `json:"phase,omitempty"`
	// Message says why the last check failed.
	// +optional
	Message string `json:"message,omitempty"`
	// LastChecked is when the repository was last checked.
	// +optional
	LastChecked *metav1.Time `json:"lastChecked,omitempty"`
	// ObservedGeneration is the generation the last check saw.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BackupRepository is a Bunker repository the operator backs up into
// and restores from, with the Secrets that open it. The operator checks
// periodically that it can open it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=bunker
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Checked",type=date,JSONPath=`.status.lastChecked`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupRepository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackupRepositorySpec   `json:"spec"`
	Status BackupRepositoryStatus `json:"status,omitempty"`
}

// BackupRepositoryList is a list of BackupRepositories.
// +kubebuilder:object:root=true
type BackupRepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupRepository `json:"items"`
}
