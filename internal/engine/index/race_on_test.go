//go:build race

package index

// raceEnabled scales down single-goroutine stress tests under -race.
const raceEnabled = true
