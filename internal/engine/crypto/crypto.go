package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime/debug"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

// Overhead is the number of bytes sealing adds to a message.
const Overhead = NonceSize + TagSize

// NonceSize and TagSize of AES-256-GCM.
const (
	NonceSize = 12
	TagSize   = 16
)

// ErrUnauthenticated means a sealed message failed authentication: wrong
// key, wrong AAD, or damaged bytes.
var ErrUnauthenticated = errors.New("ciphertext verification failed (wrong key or damaged data)")

// Key seals and opens messages. It is safe for concurrent use.
type Key struct {
	aead cipher.AEAD
}

// NewKey returns a Key for a 32-byte secret.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("encryption key must be %d bytes, got %d", KeySize, len(secret))
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead}, nil
}

// Seal appends nonce || ciphertext || tag of plaintext to dst and returns
// the result. dst and plaintext must not overlap.
func (k *Key) Seal(dst, plaintext, aad []byte) []byte {
	n := len(dst)
	dst = grow(dst, NonceSize+len(plaintext)+TagSize)
	nonce := dst[n : n+NonceSize]
	if _, err := rand.Read(nonce); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+).
		panic("crypto/rand failed: " + err.Error())
	}
	return k.aead.Seal(dst[:n+NonceSize], nonce, plaintext, aad)
}

// Open authenticates and decrypts a sealed message, appending the
// plaintext to dst.
func (k *Key) Open(dst, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("sealed message too short (%d bytes): %w", len(sealed), ErrUnauthenticated)
	}
	out, err := k.aead.Open(dst, sealed[:NonceSize], sealed[NonceSize:], aad)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return out, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}

// Random returns n random bytes.
func Random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return b
}

// KDFParams are the argon2id parameters of one password key.
type KDFParams struct {
	Algorithm string `json:"alg"`     // "argon2id"
	Time      uint32 `json:"time"`    // iterations
	MemoryKiB uint32 `json:"memory"`  // memory in KiB
	Threads   uint8  `json:"threads"` // parallelism
	Salt      []byte `json:"salt"`    // 32 random bytes
}

// DefaultKDF returns the parameters for new keys: argon2id, 3 passes over
// 64 MiB with 2 lanes (about 0.2 s on a current core), and a fresh salt.
func DefaultKDF() KDFParams {
	return KDFParams{Algorithm: "argon2id", Time: 3, MemoryKiB: 64 * 1024, Threads: 2, Salt: Random(32)}
}

// WeakKDF returns cheap parameters for tests only.
func WeakKDF() KDFParams {
	return KDFParams{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1, Salt: Random(32)}
}

// The most a key object may ask of argon2id. Bunker writes keys of 3
// passes over 64 MiB; the bounds leave room for stronger keys while a
// planted key costs at most 1 GiB and 10 passes (a few seconds), not the
// memory of a small backup host.
const (
	MaxKDFTime      = 10
	MaxKDFMemoryKiB = 1 << 20
)

// Validate refuses unknown algorithms and parameters that would let a
// hostile key file exhaust memory or time.
func (p KDFParams) Validate() error {
	if p.Algorithm != "argon2id" {
		return fmt.Errorf("unsupported key derivation %q (want argon2id)", p.Algorithm)
	}
	if p.Time < 1 || p.Time > MaxKDFTime {
		return fmt.Errorf("argon2id time %d out of range 1..%d", p.Time, MaxKDFTime)
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > MaxKDFMemoryKiB {
		return fmt.Errorf("argon2id memory %d KiB out of range 8..%d", p.MemoryKiB, MaxKDFMemoryKiB)
	}
	if p.Threads < 1 {
		return fmt.Errorf("argon2id threads must be at least 1")
	}
	if len(p.Salt) < 16 || len(p.Salt) > 64 {
		return fmt.Errorf("argon2id salt of %d bytes out of range 16..64", len(p.Salt))
	}
	return nil
}

// Derive stretches password into a 32-byte key-encryption key.
func (p KDFParams) Derive(password string) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	k := argon2.IDKey([]byte(password), p.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
	if p.MemoryKiB >= releaseKiB {
		// argon2id's block (64 MiB for new keys) is garbage now, but the
		// collector counts it as live until its next cycle, which the
		// pacer sets at twice it: a restore or a no-change backup grew
		// by that much beside it (peak RSS 149 MiB, 115 with this, on
		// the quick benchmark set). Collect it and give it back now.
		debug.FreeOSMemory()
	}
	return k, nil
}

// releaseKiB is the argon2id memory from which Derive returns it to the
// operating system at once: below it (test keys) a collection costs more
// than it frees.
const releaseKiB = 8 << 10
