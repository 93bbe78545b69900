// Package postgres backs up PostgreSQL with its own programs and restores
// it: logical backups (pg_dump --format=custom per database, uncompressed
// so rows deduplicate, plus pg_dumpall --globals-only), physical base
// backups (pg_basebackup's tar stream stored file by file under pgdata/
// with its manifest), WAL archiving (segment names, system identifiers,
// a pg_receivewal-based streaming receiver), and everything a
// point-in-time recovery decides: the WAL it needs, the recovery
// settings, the restored directory's owner (PhysicalRestore). It owns the
// metadata its snapshots record (Metadata: written by Map, read by
// ParseMetadata), the WAL archive's expiry (WALArchive, a
// source.LogArchive), the physical backup chain (PhysicalParent) and the
// scratch clusters of restore drills. It sees a repository only as
// source.Sink, source.Tree and source.SnapshotInfo values; it never
// imports the engine.
//
// Guarantees: a backup returns nil only when every program exited 0 and
// every file was streamed whole into the sink; the database password
// reaches the programs only through a temporary 0600 PGPASSFILE, never a
// command line, message or snapshot metadata. Parsers of what the server
// or a backup hands back (connection strings, WAL names and headers,
// backup_label, backup manifests, the tar stream, our JSON manifests,
// snapshot metadata) reject malformed input with an error and are
// fuzzed. Snapshot metadata that does not parse makes expiry keep more,
// never forget more, and is never read as a WAL file to fetch. A restored
// data directory is untrusted: recovery files are never written through
// a link it holds.
package postgres
