// Package postgres backs up PostgreSQL with its own programs and restores
// it: logical backups (pg_dump --format=custom per database, uncompressed
// so rows deduplicate, plus pg_dumpall --globals-only), physical base
// backups (pg_basebackup's tar stream stored file by file under pgdata/
// with its manifest), WAL archiving (segment names, system identifiers,
// a pg_receivewal-based streaming receiver) and the choice of WAL a
// point-in-time recovery needs.
//
// Guarantees: a backup returns nil only when every program exited 0 and
// every file was streamed whole into the sink; the database password
// reaches the programs only through a temporary 0600 PGPASSFILE, never a
// command line, message or snapshot metadata. Parsers of what the server
// or a backup hands back (connection strings, WAL names and headers,
// backup_label, backup manifests, the tar stream, our JSON manifests)
// reject malformed input with an error and are fuzzed.
package postgres
