//go:build !race

package chunker

// raceEnabled: see race_test.go.
const raceEnabled = false
