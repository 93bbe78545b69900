package operator

// The DeepCopy methods and the CRDs are generated from the kubebuilder
// markers in api/v1alpha1 by controller-gen v0.23.0 (go install
// sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0, outside this
// module). Run `go generate ./internal/operator`, then
// `go test ./internal/operator -run TestDeployCRDs -update` to copy the
// CRDs into deploy/kubernetes.
//go:generate controller-gen object paths=./api/v1alpha1
//go:generate controller-gen crd:crdVersions=v1 paths=./api/v1alpha1 output:crd:artifacts:config=crds
