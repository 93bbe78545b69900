//go:build race

package chunker

// raceEnabled makes the data-heavy tests use smaller inputs under the race
// detector, which slows the byte loops down some twentyfold; the chunker
// has no concurrency of its own for it to check.
const raceEnabled = true
