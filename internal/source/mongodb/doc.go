// Package mongodb backs up MongoDB servers through the Go driver and
// restores them, optionally through mongodump and mongorestore instead.
//
// # Format
//
// A backup is stored in mongodump's directory layout under mongodb/, so
// that a restored copy of the files (bunker restore SNAPSHOT --target DIR,
// or restore mongodb --to-dir DIR) is also usable by mongorestore:
//
//	mongodb/backup.json                      our facts (BackupInfo)
//	mongodb/<db>/<coll>.bson                 the documents: raw BSON, concatenated
//	mongodb/<db>/<coll>.metadata.json        options, indexes, uuid, collectionName, type
//	mongodb/<db>/system.buckets.<coll>.bson  a time-series collection's buckets
//	mongodb/admin/system.users.bson          users and roles (with Users only)
//	mongodb/oplog.bson                       oplog entries from the start to the end of
//	                                         the dump (replica sets, Oplog)
//
// Collection and database names are escaped for file names as mongodump
// does (url.PathEscape; names too long for a file keep a prefix and a
// hash). The authoritative name is the collectionName of the metadata and
// the entry in backup.json. Documents are streamed from the server's
// cursor into the sink as the server sent them: never decoded, never
// re-encoded, never staged in a temporary file. Views have a metadata file
// only.
//
// With the mongodump tool, the backup is mongodb/dump.archive (mongodump
// --archive) next to backup.json, whose "tool" says so; restoring it needs
// mongorestore.
//
// Oplog archives for point-in-time recovery are separate snapshots of
// oplog/<ts>.bson chunks; see Tailer and PlanReplay.
//
// # Guarantees
//
// Dump returns nil only when every file is complete; on error the caller
// commits nothing. Passwords (in the URI or given separately) never appear
// in errors, metadata or tool command lines: tools get them through a 0600
// configuration file removed afterwards. Restore restores every collection
// it can and reports each one; a failing collection does not stop the
// others.
package mongodb
