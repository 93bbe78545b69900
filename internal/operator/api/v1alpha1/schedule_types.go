package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScheduleSpec says when to create Backups and what they contain.
type ScheduleSpec struct {
	// Schedule is a cron expression (minute hour day-of-month month
	// day-of-week, in UTC unless prefixed with CRON_TZ=Zone), a
	// descriptor (@hourly, @daily, @weekly, @monthly, @yearly) or
	// "@every DURATION" (at least 1m; slots at multiples of DURATION
	// since the Unix epoch).
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^((CRON_TZ|TZ)=[A-Za-z0-9_/+-]+ )?(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every ([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|[0-9A-Za-z*/,?-]+( [0-9A-Za-z*/,?-]+){4})$`
	Schedule string `json:"schedule"`
	// Suspend stops creating Backups; running ones continue.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// Template is the spec of every Backup the Schedule creates.
	Template BackupSpec `json:"template"`
	// KeepLast keeps this many of the Schedule's Backup objects and
	// deletes older finished ones (the objects only: snapshots stay until
	// the repository's retention removes them). Unset: keep all.
	// +kubebuilder:validation:Minimum=1
	// +optional
	KeepLast *int32 `json:"keepLast,omitempty"`
}

// ScheduleStatus is what the Schedule did last.
type ScheduleStatus struct {
	// LastScheduleTime is the slot of the last Backup created.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// NextScheduleTime is the next slot.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// LastBackup is the name of the last Backup created.
	// +optional
	LastBackup string `json:"lastBackup,omitempty"`
	// Conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Schedule creates a Backup named <schedule>-<yyyymmddhhmmss> (the slot,
// UTC) at every slot of its schedule. After downtime it creates one
// Backup for the latest missed slot, not one per missed slot.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=bunker
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Last",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.status.lastBackup`
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.nextScheduleTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 48",message="a Schedule's name is at most 48 characters (its Backups add 15)"
type Schedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ScheduleSpec   `json:"spec"`
	Status ScheduleStatus `json:"status,omitempty"`
}

// ScheduleList is a list of Schedules.
// +kubebuilder:object:root=true
type ScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Schedule `json:"items"`
}
