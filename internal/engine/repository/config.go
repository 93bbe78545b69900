package repository

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bunkerbackup/bunker/internal/engine/chunker"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
)

// Errors callers map to exit codes.
var (
	ErrNoRepository  = errors.New("repository does not exist")
	ErrWrongPassword = errors.New("wrong password or no key found")
	// ErrDamagedKey marks a key object that cannot be decoded (garbage,
	// truncated, or KDF parameters out of range): the password is not
	// to blame.
	ErrDamagedKey  = errors.New("damaged key object")
	ErrNewerFormat = format.ErrNewerFormat
)

// ChunkerConfig are the content-defined chunking parameters.
type ChunkerConfig struct {
	Min  int    `json:"min"`
	Avg  int    `json:"avg"`
	Max  int    `json:"max"`
	Seed []byte `json:"seed"` // 32 secret bytes for the gear table
}

// Params returns the chunker parameters these settings describe.
func (c ChunkerConfig) Params() chunker.Params {
	var seed [32]byte
	copy(seed[:], c.Seed)
	return chunker.Params{Min: c.Min, Avg: c.Avg, Max: c.Max, Seed: seed}
}

// Config is the decrypted repository configuration.
type Config struct {
	Version          int           `json:"version"`
	ID               string        `json:"id"`
	Created          time.Time     `json:"created"`
	RequiredFeatures []string      `json:"required_features"`
	Chunker          ChunkerConfig `json:"chunker"`
	IDKey            []byte        `json:"id_key"` // 32 bytes: BLAKE3 key for blob IDs
	Compression      string        `json:"compression"`
	PackSize         int           `json:"pack_size"`
	ObjectLock       *LockConfig   `json:"object_lock,omitempty"`
}

func (c *Config) validate() error {
	if c.Version != format.Version {
		if c.Version > format.Version {
			return fmt.Errorf("config version %d: %w", c.Version, ErrNewerFormat)
		}
		return fmt.Errorf("%w: config version %d", format.ErrCorrupt, c.Version)
	}
	if err := format.CheckFeatures(c.RequiredFeatures); err != nil {
		return err
	}
	if len(c.IDKey) != 32 || len(c.Chunker.Seed) != 32 {
		return fmt.Errorf("%w: config: id key or chunker seed is not 32 bytes", format.ErrCorrupt)
	}
	ch := c.Chunker
	if ch.Min < 64 || ch.Avg <= ch.Min || ch.Max <= ch.Avg || ch.Max > 64<<20 || ch.Avg&(ch.Avg-1) != 0 {
		return fmt.Errorf("%w: config: chunker sizes %d/%d/%d are invalid", format.ErrCorrupt, ch.Min, ch.Avg, ch.Max)
	}
	if c.PackSize < 1<<20 || c.PackSize > 512<<20 {
		return fmt.Errorf("%w: config: pack size %d out of range", format.ErrCorrupt, c.PackSize)
	}
	switch c.Compression {
	case "zstd-fastest", "zstd-default", "zstd-better", "zstd-best", "none":
	default:
		return fmt.Errorf("%w: config: unknown compression %q", format.ErrCorrupt, c.Compression)
	}
	if c.ObjectLock != nil {
		if err := c.ObjectLock.Validate(); err != nil {
			return fmt.Errorf("%w: config: %v", format.ErrCorrupt, err)
		}
	}
	return nil
}

func encodeConfig(key *crypto.Key, c *Config) ([]byte, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	hdr := format.NewHeader(format.TypeConfig, 0).Bytes()
	return key.Seal(hdr, js, hdr), nil
}

func decodeConfig(key *crypto.Key, b []byte) (*Config, error) {
	if _, err := format.ParseHeader(b, format.TypeConfig); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	js, err := key.Open(nil, b[format.HeaderSize:], b[:format.HeaderSize])
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(js, &c); err != nil {
		return nil, fmt.Errorf("%w: config: %v", format.ErrCorrupt, err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
