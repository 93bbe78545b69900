package source

import "time"

// SnapshotInfo is what a source's own logic (log-archive expiry, finding
// the base backup and the logs a point-in-time recovery needs) knows of a
// snapshot. The caller fills it from the repository's snapshots; sources
// do not read repositories themselves.
type SnapshotInfo struct {
	ID       string
	Kind     string // "full", "continuous", …: the snapshot's kind
	Host     string
	Paths    []string
	Time     time.Time
	Metadata map[string]string
}

// Expired is one archive snapshot a log archive no longer needs.
type Expired struct {
	ID  string // of the snapshot
	Why string // what it holds, for messages: "(WAL 0000000100000000000000A1..0000000100000000000000B7)"
}

// Expiry is the result of a LogArchive's Expire.
type Expiry struct {
	Expired []Expired
	// Archives is how many archive snapshots of this kind there are.
	Archives int
	// Notes are what the caller should show: archives kept because they
	// cannot be read, servers without a base backup whose logs are all
	// kept.
	Notes []string
}

// LogArchive is a database's archive of change logs — PostgreSQL's WAL,
// MySQL's binlogs, MongoDB's oplog — kept as continuous snapshots for
// point-in-time recovery.
type LogArchive interface {
	// Name is what the archive is called in messages ("WAL archive").
	Name() string
	// Expire picks, from all snapshots of a repository, the archive
	// snapshots no kept base backup needs: a restore from any kept
	// backup never reads them. It never picks a snapshot it cannot read.
	Expire(all []SnapshotInfo) Expiry
}
