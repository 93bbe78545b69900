// Package v1alpha1 holds the bunker.dev/v1alpha1 API of the Bunker
// operator: BackupRepository, Backup, Schedule and Restore, all
// namespaced and each with a status subresource.
//
// The kubebuilder markers on the types are the source of the CRDs in
// internal/operator/crds (controller-gen, see internal/operator/gen.go);
// the API server's OpenAPI validation, not the operator, refuses
// malformed objects.
//
// +kubebuilder:object:generate=true
// +groupName=bunker.dev
package v1alpha1
