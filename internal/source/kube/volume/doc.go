// Package volume backs up and restores the data of Kubernetes
// PersistentVolumeClaims from a node: the node agent finds which claims
// have their data on its node (Find), copies a volume's directory into a
// backup and back (Save, Load), can take a crash-consistent copy through
// a CSI VolumeSnapshot first (SnapshotClone), and runs the exec hooks that
// make a backup application-consistent (ParseHook, HooksFromPods, Exec).
//
// Where the data is: a hostPath or local volume is its path on the node;
// a CSI volume is the kubelet's mount of it for a pod on the node,
// <kubelet>/pods/<pod-uid>/volumes/kubernetes.io~csi/<pv>/mount. The
// agent sees the node's root filesystem under FindOptions.NodeRoot; CSI
// mounts made after the agent started are only visible there when the
// kubelet directory is mounted into the agent with mountPropagation
// HostToContainer.
//
// Guarantees:
//   - Save never follows a symbolic link: it walks with directory file
//     descriptors and O_NOFOLLOW, so a pod that swaps a directory for a
//     link during the walk cannot make the backup read files outside the
//     volume. It stays on the volume's filesystem. A file that vanishes
//     during the walk is a warning; one that cannot be read fails Save.
//   - Load never writes outside its target directory nor through a
//     symbolic link already there: every step is relative to an open
//     directory with O_NOFOLLOW, and each file is written to a temporary
//     name, synced and renamed into place. Entry names from the backup
//     are checked, links are recreated exactly as stored.
//   - SnapshotClone removes what it created when it fails half-way, and
//     Clone.Cleanup does the same afterwards, both with their own timeout.
//     The objects it creates carry the label app.kubernetes.io/managed-by=bunker
//     and backup.bunker.dev/temporary=true, and the clone claim and mover
//     pod are owned by the VolumeSnapshot, so deleting a left-over
//     snapshot removes the rest.
//   - Parsers of what users, pod annotations and the API server hand us
//     (ParseHook, the hook annotations, the exec stream) reject malformed
//     input with an error and are fuzzed. Errors about a hook name its
//     pod and program, never its arguments (which may hold a password).
//
// Hooks run through the API server's pods/exec endpoint with client-go's
// remotecommand, as kubectl does: WebSocket (v5/v4.channel.k8s.io), and
// SPDY for API servers that cannot upgrade to it. A hook that times out
// is reported, but Kubernetes cannot stop the command in the container.
//
// Save and Load need Linux; everything else builds everywhere.
package volume
