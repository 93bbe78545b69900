// Package mysql backs up MySQL and MariaDB servers and restores them,
// with point-in-time recovery from archived binary logs.
//
// It drives the native tools (mariadb-dump, mariadb, mariadb-binlog,
// mariadb-backup and mbstream; their mysql* names as a fallback) and talks
// to the server through database/sql for what they do not tell (databases,
// version, binlog state). Credentials reach the tools only through a
// temporary 0600 option file given as their first option
// (--defaults-extra-file) and removed when they exit: never on a command
// line, in an error or in snapshot metadata.
//
// A logical backup is one mariadb-dump per database (--single-transaction,
// with routines, events and triggers), streamed into mysql/<db>.sql, plus
// the accounts (mysql/_users.sql) and mysql/backup.json, the manifest a
// restore reads: every dump records the binlog position it is consistent
// with. Dumps of different databases start at different moments, so a
// point-in-time restore replays the archived binlogs for each database
// from that database's own position.
//
// A physical backup is a mariadb-backup xbstream (mysql/backup.xbstream);
// restoring it extracts and prepares a data directory a server starts on.
//
// ArchiveBinlogs copies a server's binary logs as they are written
// (mariadb-binlog --read-from-remote-server --raw --stop-never) and hands
// finished files, and every so often the growing active one, to a push
// function that stores them.
//
// Every operation either completes or returns an error; the caller commits
// a snapshot only on success. Tested against MariaDB 10.11; the MySQL and
// xtrabackup paths follow their documentation but are untested.
package mysql
