package pack

import "github.com/klauspost/compress/zstd"

// Encoder compresses one blob into one zstd frame. Implementations are
// safe for concurrent use. NewEncoder returns the one this build uses,
// named by EncoderName.
type Encoder interface {
	// AppendFrame appends the frame holding src to dst, or reports false
	// (with dst as given) if it could not compress.
	AppendFrame(dst, src []byte) ([]byte, bool)
}

// goEncoder is the pure-Go zstd encoder (github.com/klauspost/compress).
type goEncoder struct{ enc *zstd.Encoder }

func newGoEncoder(level zstd.EncoderLevel, concurrency int) (*goEncoder, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(concurrency),
		zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	return &goEncoder{enc: enc}, nil
}

func (e *goEncoder) AppendFrame(dst, src []byte) ([]byte, bool) {
	return e.enc.EncodeAll(src, dst), true
}
