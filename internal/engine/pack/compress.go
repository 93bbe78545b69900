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

// Blobs of at least sampleMin bytes are tried on samples before they are
// compressed whole.
const (
	sampleMin  = 64 << 10
	sampleSize = 8 << 10
	samples    = 4
)

// incompressible reports whether samples spread evenly over p (the start,
// the end and two points between) fail to shrink by 1/32 when compressed
// with enc: then compressing all of p is almost certainly wasted work, as
// for encrypted, already compressed or media data. libzstd spends as long
// on incompressible input as the pure-Go encoder takes to give up on it
// four times over (1.7 against 6 GB/s here), and the samples cost 3% of a
// 1 MiB blob. A blob that is only compressible where no sample looks is
// stored raw: a few per cent of size at worst, never wrong data. buf is
// working space.
func incompressible(enc Encoder, buf, p []byte) bool {
	if len(p) < sampleMin {
		return false
	}
	in, out := 0, 0
	step := (len(p) - sampleSize) / (samples - 1)
	for i := range samples {
		s := p[i*step : i*step+sampleSize]
		frame, ok := enc.AppendFrame(buf[:0], s)
		if !ok {
			return false
		}
		if len(frame) < len(s)-len(s)/8 {
			return false // clearly compressible
		}
		in += len(s)
		out += len(frame)
	}
	return out >= in-in/32
}
