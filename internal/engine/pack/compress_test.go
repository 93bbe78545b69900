package pack

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestEncodersRoundTrip checks that the frames of the Encoder this build
// uses (libzstd with cgo, pure Go without) and of the pure-Go Encoder
// decode to their input at every level, appended after existing bytes.
func TestEncodersRoundTrip(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var text bytes.Buffer
	for i := 0; text.Len() < 3<<20; i++ {
		fmt.Fprintf(&text, "line %d: the quick brown fox %x jumps over the lazy dog\n", i, i*i)
	}
	inputs := map[string][]byte{
		"empty": {}, "short": []byte("hello, bunker\n"), "run": bytes.Repeat([]byte("z"), 5000),
		"random": random, "text": text.Bytes(),
	}
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
		build, err := NewEncoder(level, 2)
		if err != nil {
			t.Fatal(err)
		}
		pure, err := newGoEncoder(level, 2)
		if err != nil {
			t.Fatal(err)
		}
		for encName, enc := range map[string]Encoder{"build": build, "go": pure} {
			for name, in := range inputs {
				frame, ok := enc.AppendFrame([]byte("prefix"), in)
				if !ok || !bytes.HasPrefix(frame, []byte("prefix")) {
					t.Fatalf("%v/%s/%s: AppendFrame ok=%v, lost the prefix", level, encName, name, ok)
				}
				out, err := dec.DecodeAll(frame[len("prefix"):], nil)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("%v/%s/%s: decoded %d bytes (%v), want %d", level, encName, name, len(out), err, len(in))
				}
				if name == "text" && len(frame) > len(in)/4 {
					t.Errorf("%v/%s: text compressed to %d of %d bytes", level, encName, len(frame), len(in))
				}
			}
		}
	}
}

// BenchmarkEncoders compares the build's Encoder with the pure-Go one on
// 1 MiB of source-like text at the default (fastest) level.
func BenchmarkEncoders(b *testing.B) {
	var text bytes.Buffer
	for i := 0; text.Len() < 1<<20; i++ {
		fmt.Fprintf(&text, "\tif err := f%d(ctx, x[%d]); err != nil {\n\t\treturn fmt.Errorf(\"step %d: %%w\", err)\n\t}\n", i%97, i%13, i)
	}
	build, _ := NewEncoder(zstd.SpeedFastest, 1)
	pure, _ := newGoEncoder(zstd.SpeedFastest, 1)
	for name, enc := range map[string]Encoder{"build": build, "go": pure} {
		b.Run(name, func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(text.Len()))
			for b.Loop() {
				dst, _ = enc.AppendFrame(dst[:0], text.Bytes())
			}
			b.ReportMetric(float64(len(dst))/float64(text.Len()), "ratio")
		})
	}
}
