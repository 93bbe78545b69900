package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, err := NewKey(Random(KeySize))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, 1 << 20} {
		pt := Random(n)
		s := k.Seal(nil, pt, []byte("aad"))
		if len(s) != n+Overhead {
			t.Fatalf("sealed length %d, want %d", len(s), n+Overhead)
		}
		got, err := k.Open(nil, s, []byte("aad"))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip of %d bytes failed: %v", n, err)
		}
		if _, err := k.Open(nil, s, []byte("other")); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("wrong aad accepted: %v", err)
		}
		for _, i := range []int{0, NonceSize, len(s) - 1} {
			bad := bytes.Clone(s)
			bad[i] ^= 1
			if _, err := k.Open(nil, bad, []byte("aad")); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("flipped byte %d accepted", i)
			}
		}
	}
	if _, err := k.Open(nil, []byte{1, 2, 3}, nil); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("short message accepted")
	}
	other, _ := NewKey(Random(KeySize))
	if _, err := other.Open(nil, k.Seal(nil, []byte("x"), nil), nil); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("wrong key accepted")
	}
}

func TestKDF(t *testing.T) {
	p := WeakKDF()
	a, err := p.Derive("pw")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Derive("pw")
	c, _ := p.Derive("pw2")
	if !bytes.Equal(a, b) || bytes.Equal(a, c) || len(a) != KeySize {
		t.Fatal("derive not deterministic or not password dependent")
	}
	bad := []KDFParams{
		{Algorithm: "scrypt", Time: 1, MemoryKiB: 64, Threads: 1, Salt: Random(32)},
		{Algorithm: "argon2id", Time: 0, MemoryKiB: 64, Threads: 1, Salt: Random(32)},
		{Algorithm: "argon2id", Time: 1, MemoryKiB: 1 << 30, Threads: 1, Salt: Random(32)},
		{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 0, Salt: Random(32)},
		{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1, Salt: nil},
	}
	for i, p := range bad {
		if _, err := p.Derive("pw"); err == nil {
			t.Errorf("case %d: bad params accepted", i)
		}
	}
	// Costly parameters a planted key object may ask for (the old
	// bounds accepted 4 GiB and 100 passes): Validate only, so that a
	// regression does not run them.
	costly := []KDFParams{
		{Algorithm: "argon2id", Time: 100, MemoryKiB: 64, Threads: 1, Salt: Random(32)},
		{Algorithm: "argon2id", Time: MaxKDFTime + 1, MemoryKiB: 64, Threads: 1, Salt: Random(32)},
		{Algorithm: "argon2id", Time: 1, MemoryKiB: 4 << 20, Threads: 1, Salt: Random(32)},
		{Algorithm: "argon2id", Time: 1, MemoryKiB: MaxKDFMemoryKiB + 1, Threads: 1, Salt: Random(32)},
	}
	for i, p := range costly {
		if err := p.Validate(); err == nil {
			t.Errorf("costly case %d (t=%d m=%dKiB): accepted", i, p.Time, p.MemoryKiB)
		}
	}
	if err := DefaultKDF().Validate(); err != nil {
		t.Errorf("the default parameters are refused: %v", err)
	}
}
