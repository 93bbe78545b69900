// Package state is the backup daemon's memory: run history, drill
// results, the schedule slots already run, repository size history and
// active alerts, kept in one embedded bbolt database file on local disk.
//
// Guarantees:
//
//   - Durable: every write method returns after the change is fsynced, so
//     a run recorded by StartRun survives kill -9 and power loss. Open
//     followed by Recover turns runs a dead daemon left "running" into
//     "interrupted" ones, so nothing is lost and nothing looks alive.
//   - Exclusive: one process at a time. A second Open of the same file,
//     from this or another process, fails within Options.LockTimeout
//     (1 s) with ErrInUse instead of hanging. Other tools read the state
//     through the daemon, not the file.
//   - Exactly once per slot: ClaimSlot checks and records a schedule slot
//     in one transaction, so concurrent claims and restarts never run a
//     slot twice.
//   - Bounded: each job keeps its newest Options.KeepRuns finished runs
//     (1000); a run's log keeps its last MaxLog bytes (64 KiB).
//   - Safe on bad input: a corrupt, hand-edited or truncated value is an
//     error naming its bucket and key, never a panic; a file written by a
//     newer format version is refused with a clear error.
//
// Layout (format version 1). Values are JSON unless noted; times in keys
// are 12 bytes (seconds since 1970 with the sign bit flipped, big endian,
// then nanoseconds) so keys sort by time:
//
//	meta/version            format version, a JSON number
//	runs/<id>               a run without its log (runRecord)
//	logs/<id>               the run's log tail, raw text
//	order/<time><id>        index of all runs by start time (value 1 byte)
//	jobs/<job>/<time><id>   index of one job's runs by start time
//	running/<id>            index of runs whose result is "running"
//	slots/<job>             last claimed schedule slot, a JSON time
//	sizes/<repo>/<time>     repository size in bytes, a JSON number
//	alerts/<key>            an active alert, {"since": time}
//
// The indexes are derived from runs/ and always updated in the same
// transaction as the run.
package state
