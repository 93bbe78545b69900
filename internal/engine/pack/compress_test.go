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
	random := randomBytes(1, 300<<10)
	text := lines(3<<20, func(i int) string {
		return fmt.Sprintf("line %d: the quick brown fox %x jumps over the lazy dog\n", i, i*i)
	})
	inputs := map[string][]byte{
		"empty": {}, "short": []byte("hello, bunker\n"), "run": bytes.Repeat([]byte("z"), 5000),
		"random": random, "text": text,
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
	text := lines(1<<20, func(i int) string {
		return fmt.Sprintf("\tif err := f%d(ctx, x[%d]); err != nil {\n\t\treturn fmt.Errorf(\"step %d: %%w\", err)\n\t}\n", i%97, i%13, i)
	})
	build, _ := NewEncoder(zstd.SpeedFastest, 1)
	pure, _ := newGoEncoder(zstd.SpeedFastest, 1)
	for name, enc := range map[string]Encoder{"build": build, "go": pure} {
		b.Run(name, func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				dst, _ = enc.AppendFrame(dst[:0], text)
			}
			b.ReportMetric(float64(len(dst))/float64(len(text)), "ratio")
		})
	}
}

func TestIncompressible(t *testing.T) {
	random := randomBytes(3, 1<<20)
	text := lines(1<<20, func(i int) string {
		return fmt.Sprintf("row %d|%d|%d|                                        \n", i, i%100, i*7)
	})
	half := append(append([]byte{}, random[:512<<10]...), text[:512<<10]...)
	enc, err := NewEncoder(zstd.SpeedFastest, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want bool
	}{
		{"random", random, true},
		{"text", text, false},
		{"half random, half text", half, false},
		{"small random blob", random[:sampleMin-1], false},
		{"zeros", make([]byte, 1<<20), false},
	} {
		if got := incompressible(enc, nil, c.data); got != c.want {
			t.Errorf("%s: incompressible = %v, want %v", c.name, got, c.want)
		}
	}
	// SealBlob stores sampled-incompressible blobs raw and the others
	// compressed, and both open again.
	key := newKey(t)
	codec, err := NewCodec(key, zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		data []byte
		flag byte
	}{{random, 0}, {text, 1}} {
		id := Hash(c.data)
		sealed, _ := codec.SealBlob(nil, nil, DataBlob, id, c.data)
		inner, err := key.Open(nil, sealed, blobAAD(DataBlob, id))
		if err != nil || inner[0] != c.flag {
			t.Fatalf("stored with flag %d (%v), want %d", inner[0], err, c.flag)
		}
		out, err := codec.OpenBlob(nil, DataBlob, id, sealed, len(c.data))
		if err != nil || !bytes.Equal(out, c.data) {
			t.Fatalf("open: %v", err)
		}
	}
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// lines concatenates line(0), line(1), ... until there are at least n bytes.
func lines(n int, line func(i int) string) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(line(i))
	}
	return b.Bytes()
}
