package chunker

import (
	"fmt"
	"math/bits"
)

// Size bounds accepted by Params.Validate.
const (
	// MinSizeLimit is the smallest allowed Params.Min: the rolling-hash
	// window, so that every candidate window lies inside the chunk.
	MinSizeLimit = WindowSize
	// MaxSizeLimit is the largest allowed Params.Max. A Chunker buffers up
	// to 2*Max bytes.
	MaxSizeLimit = 64 << 20
)

// Default chunk sizes.
const (
	DefaultMin = 512 << 10
	DefaultAvg = 1 << 20
	DefaultMax = 8 << 20
)

// Params configure a Chunker. They are part of the repository format:
// changing any field changes every chunk boundary.
//
// Seed is secret (it is derived from the repository key); Params' String
// and GoString methods leave it out so that it does not end up in logs.
type Params struct {
	Min, Avg, Max int      // chunk size bounds and target mean, in bytes
	Seed          [32]byte // secret seed of the gear table
}

// DefaultParams returns the default sizes (Min 512 KiB, Avg 1 MiB,
// Max 8 MiB) with the given seed.
func DefaultParams(seed [32]byte) Params {
	return Params{Min: DefaultMin, Avg: DefaultAvg, Max: DefaultMax, Seed: seed}
}

// Validate checks that MinSizeLimit <= Min < Avg < Max <= MaxSizeLimit
// and that Avg is a power of two.
func (p Params) Validate() error {
	switch {
	case p.Min < MinSizeLimit:
		return fmt.Errorf("chunker: invalid params %v: Min must be at least %d", p, MinSizeLimit)
	case p.Max > MaxSizeLimit:
		return fmt.Errorf("chunker: invalid params %v: Max must be at most %d", p, MaxSizeLimit)
	case !(p.Min < p.Avg && p.Avg < p.Max):
		return fmt.Errorf("chunker: invalid params %v: need Min < Avg < Max", p)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker: invalid params %v: Avg must be a power of two", p)
	}
	return nil
}

// String formats the sizes, never the seed.
func (p Params) String() string {
	return fmt.Sprintf("{Min:%d Avg:%d Max:%d}", p.Min, p.Avg, p.Max)
}

// GoString formats the sizes for %#v, never the seed.
func (p Params) GoString() string {
	return fmt.Sprintf("chunker.Params{Min:%d, Avg:%d, Max:%d, Seed:[redacted]}", p.Min, p.Avg, p.Max)
}

// normal returns the normal point N: candidate lengths below it are tested
// against maskS, the others against maskL. See the package documentation.
func (p Params) normal() int {
	return max(p.Min, p.Avg-p.Min/2)
}

// masks returns maskS and maskL for p.Avg (which must be a power of two).
func (p Params) masks() (maskS, maskL uint64) {
	b := bits.TrailingZeros(uint(p.Avg))
	return topMask(b + 2), topMask(b - 2)
}

// topMask returns a mask of the n (1 <= n <= 63) most significant bits.
func topMask(n int) uint64 {
	return ^uint64(0) << (64 - n)
}
