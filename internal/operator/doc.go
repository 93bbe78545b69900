// Package operator is the Bunker Kubernetes operator: controllers for the
// bunker.dev/v1alpha1 kinds (BackupRepository, Backup, Schedule,
// Restore), their CRDs, and their Prometheus metrics.
//
// The operator decides when work happens and records what happened; a
// Runner (InProcess, over the use cases of package app) does the work,
// either inside the operator process (ModeInProcess) or in a batch/v1 Job
// per Backup or Restore (ModeJob). The node agent (Agent) backs up the
// volume files of each node with the same runner.
//
// Guarantees:
//   - A Backup or Restore is written "Running" (with attempts+1) before
//     its work starts, so an operator restart sees what was in flight.
//   - A Completed or Failed Backup is never run again. A Backup found
//     Running after a restart is not repeated when its snapshot (found by
//     the tag bunker.dev/backup=<ns>/<name>/<uid>) exists; otherwise it
//     runs again, reusing the packs the interrupted attempt uploaded.
//   - A failed Backup or Restore is not retried: the next slot of its
//     Schedule, or a new object, tries again.
//   - Schedules create Backups with deterministic names
//     (<schedule>-<yyyymmddhhmmss> of the slot), so a restart that
//     repeats a creation gets AlreadyExists; after downtime a Schedule
//     catches up once, not once per missed slot.
//   - Reconcilers never wait for work: Backups and Restores run in at
//     most Options.Concurrency goroutines owned by Operator.Start, which
//     returns only after they have stopped.
//   - Repository passwords and backend credentials are read from Secrets
//     when needed (never cached, never in a Job's spec: the Job reads them
//     through secretKeyRef) and are scrubbed from every message the
//     operator writes to status, events and logs.
package operator
