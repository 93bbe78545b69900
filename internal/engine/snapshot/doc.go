// Package snapshot defines snapshots (the commit points of a repository),
// finding them by ID prefix or "latest", filtering and grouping them, and
// the retention policy that `forget` applies.
package snapshot
