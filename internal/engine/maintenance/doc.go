// Package maintenance implements prune: deleting data no snapshot needs,
// while backups keep running, without a lock that writers take.
//
// Protocol (docs/FORMAT.md, "Concurrency", is normative):
//
//  1. Prune takes the maintenance lease (a conditional create; only prune
//     contends for it) so two prunes never interleave.
//  2. Sweep: every existing plan whose recorded sessions have all ended or
//     expired is carried out: the reachable blobs are computed again from
//     the snapshots that exist now, planned packs holding a reachable blob
//     with no other copy are kept (resurrected), the rest are deleted; then
//     one compacted index file replaces the loaded ones; then the old index
//     files; then the plan. Each step is idempotent.
//  3. Mark: the blobs reachable from all snapshots are computed; packs with
//     no reachable blob, unindexed packs, and (with repacking) packs with
//     too much unused space after copying their live blobs elsewhere, are
//     written into a new plan together with the sessions live right now.
//     From then on writers that start do not use those packs (tombstones).
//  4. If the new plan recorded no live session, it is swept at once.
//
// Writers write their session before reading plans, and read plans before
// the index; that ordering is what makes an immediate sweep safe on a store
// with read-after-write consistency.
package maintenance
