// Package repository is the repository engine: it creates and opens
// repositories (config and password keys), stores and loads blobs through
// packs and the index, stores snapshots and other small sealed objects, and
// keeps the writer session that lets maintenance run alongside backups.
//
// Durability order: a blob is durable once its pack is saved; it becomes
// findable once an index file naming it is saved; a snapshot is the commit
// point and is written only after Flush has saved every pack and index file
// it depends on. A crash anywhere leaves only unreferenced packs or index
// entries, which check reports as harmless and prune removes.
package repository
