// Package kube backs up and restores the objects of a Kubernetes cluster.
//
// A backup discovers every served API resource that can be listed
// (built-in and custom), lists its objects through the dynamic client,
// removes what the server fills in (uid, resourceVersion, managedFields,
// creationTimestamp, generation, status where it cannot be restored), and
// writes each object as a JSON file with sorted keys into the snapshot
// tree:
//
//	kubernetes.json                                  what was backed up (Manifest)
//	namespaces/<ns>/<group>/<resource>/<name>.json   namespaced objects
//	cluster/<group>/<resource>/<name>.json           cluster-scoped objects
//
// The core group is written "core". File and directory times are fixed
// (the object's creationTimestamp, and the Unix epoch for directories),
// so an unchanged object is byte-for-byte the same file in the next
// backup and the repository stores nothing new for it.
//
// A restore reads those files back and applies them in dependency order
// (CustomResourceDefinitions, namespaces, storage classes, volumes and
// claims, service accounts, RBAC, secrets, config maps, services,
// workloads, then everything else), with namespace mapping, resource and
// namespace filters, JSON-patch and merge-patch modifiers, a policy for
// objects that already exist (skip or update), and a dry run. Each object
// that fails is reported on its own; the rest are still restored.
//
// The package depends on client-go only; it never imports the engine. It
// writes through source.Sink and reads through source.Tree.
package kube
