// Package repair rewrites snapshots that reference lost or damaged data so
// that what is left of them restores and checks cleanly ('bunker repair
// snapshots').
//
// A repair is a writer like a backup: it runs in a session, relies on the
// blobs its repaired snapshots keep referencing (the commit check verifies
// them if the session lapsed), and commits every repaired snapshot through
// repository.Session, so a prune running alongside it can never leave a
// repaired snapshot pointing at a deleted pack. An original is removed only
// after its repaired copy is committed.
package repair
