//go:build !cgo

package pack

import "github.com/klauspost/compress/zstd"

// EncoderName names the compressor of this build.
const EncoderName = "github.com/klauspost/compress/zstd (pure Go)"

// NewEncoder returns the pure-Go encoder: without cgo it compresses every
// blob.
func NewEncoder(level zstd.EncoderLevel, concurrency int) (Encoder, error) {
	return newGoEncoder(level, concurrency)
}
