package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is bunker.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "bunker.dev", Version: "v1alpha1"}

// AddToScheme registers the kinds of this package in a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&BackupRepository{}, &BackupRepositoryList{},
		&Backup{}, &BackupList{},
		&Schedule{}, &ScheduleList{},
		&Restore{}, &RestoreList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
