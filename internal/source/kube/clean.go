package kube

import (
	"time"
)

// serverFields are metadata fields the API server fills in; they are
// removed so that the stored object only holds what a user wrote and an
// unchanged object stores the same bytes in every backup.
var serverFields = []string{
	"uid", "resourceVersion", "managedFields", "creationTimestamp", "generation",
	"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
}

// Clean removes server-populated fields from obj (an object as decoded
// from JSON) in place. keepStatus keeps .status (custom resources whose
// status is part of the object, not a subresource). It returns the
// object's creation time, or the zero time.
func Clean(obj map[string]any, group, resource string, keepStatus bool) time.Time {
	var created time.Time
	if md, ok := obj["metadata"].(map[string]any); ok {
		if s, ok := md["creationTimestamp"].(string); ok {
			created, _ = time.Parse(time.RFC3339, s)
		}
		for _, f := range serverFields {
			delete(md, f)
		}
		if ann, ok := md["annotations"].(map[string]any); ok {
			// Written by controllers on every change of the object's
			// dependents, not by users.
			delete(ann, "deployment.kubernetes.io/revision")
			if len(ann) == 0 {
				delete(md, "annotations")
			}
		}
	}
	if !keepStatus {
		delete(obj, "status")
	}
	switch groupResource(group, resource) {
	case "services":
		// A cluster IP belongs to the cluster it was allocated in;
		// restoring it elsewhere would collide. Headless stays headless.
		if spec, ok := obj["spec"].(map[string]any); ok {
			if ip, _ := spec["clusterIP"].(string); ip != "None" {
				delete(spec, "clusterIP")
				delete(spec, "clusterIPs")
			}
		}
	case "persistentvolumes":
		if spec, ok := obj["spec"].(map[string]any); ok {
			if ref, ok := spec["claimRef"].(map[string]any); ok {
				delete(ref, "uid")
				delete(ref, "resourceVersion")
			}
		}
	}
	return created
}
