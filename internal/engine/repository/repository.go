package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// ID of a blob or object.
type ID = format.ID

// Options for Init.
type Options struct {
	// KDF of the first key; zero means crypto.DefaultKDF().
	KDF crypto.KDFParams
	// Chunker sizes; zero means 512 KiB / 1 MiB / 8 MiB.
	ChunkMin, ChunkAvg, ChunkMax int
	// PackSize is the target pack size; zero means 16 MiB.
	PackSize int
	// Compression: "zstd-fastest" (default), "zstd-default",
	// "zstd-better", "zstd-best" or "none".
	Compression string
	// CopyFrom, when set, shares the chunker seed and ID key of another
	// repository so blobs keep their IDs when copied between the two.
	CopyFrom *Repository
	// ObjectLock, when set, writes every data object with a retain-until
	// date; the store must enforce Object Lock.
	ObjectLock *LockConfig
}

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	be      storage.Backend
	cfg     *Config
	master  []byte
	keyName string
	// damagedKeys are the key objects Open skipped as undecodable.
	damagedKeys []error
	key         *crypto.Key
	codec       *pack.Codec
	idx         *index.Index
	log         *slog.Logger

	hasherPool sync.Pool
	clock      func() time.Time

	session  *Session // of the writer, once started
	loadedMu sync.Mutex
	loaded   map[ID]*fileMeta // index files in idx
	retained []*index.File    // see RetainIndexEntries

	w writer
}

// Init creates a repository in an empty backend.
func Init(ctx context.Context, be storage.Backend, password string, opts Options) (*Repository, error) {
	if _, err := be.Stat(ctx, storage.Handle{Type: storage.ConfigFile}); err == nil {
		return nil, fmt.Errorf("%s already holds a repository", be.Location())
	} else if !errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("stat config: %w", err)
	}
	if password == "" {
		return nil, errors.New("an empty password is not allowed")
	}
	cfg := &Config{
		Version:          format.Version,
		ID:               hex.EncodeToString(crypto.Random(16)),
		Created:          time.Now().UTC(),
		RequiredFeatures: []string{},
		Chunker:          ChunkerConfig{Min: 512 << 10, Avg: 1 << 20, Max: 8 << 20, Seed: crypto.Random(32)},
		IDKey:            crypto.Random(32),
		Compression:      "zstd-fastest",
		PackSize:         16 << 20,
	}
	if opts.ChunkAvg != 0 {
		cfg.Chunker.Min, cfg.Chunker.Avg, cfg.Chunker.Max = opts.ChunkMin, opts.ChunkAvg, opts.ChunkMax
	}
	if opts.PackSize != 0 {
		cfg.PackSize = opts.PackSize
	}
	if opts.Compression != "" {
		cfg.Compression = opts.Compression
	}
	if opts.CopyFrom != nil {
		cfg.Chunker = opts.CopyFrom.cfg.Chunker
		cfg.IDKey = opts.CopyFrom.cfg.IDKey
	}
	if opts.ObjectLock != nil {
		if !be.Features().ObjectLock {
			return nil, fmt.Errorf("%s does not enforce Object Lock: use an S3 bucket created with Object Lock enabled (bunker init --object-lock creates one when the bucket does not exist)", be.Location())
		}
		lc := *opts.ObjectLock
		cfg.ObjectLock = &lc
		cfg.RequiredFeatures = append(cfg.RequiredFeatures, "object-lock")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kdf := opts.KDF
	if kdf.Algorithm == "" {
		kdf = crypto.DefaultKDF()
	}
	master := crypto.Random(crypto.KeySize)
	key, err := crypto.NewKey(master)
	if err != nil {
		return nil, err
	}
	r := &Repository{be: be, cfg: cfg, master: master, key: key}
	if err := r.setup(); err != nil {
		return nil, err
	}
	// Key first, config last: a crash in between leaves no config, so the
	// directory is not taken for a repository and init can be run again.
	name, err := r.AddKey(ctx, password, kdf)
	if err != nil {
		return nil, err
	}
	r.keyName = name
	b, err := encodeConfig(key, cfg)
	if err != nil {
		return nil, err
	}
	if err := r.be.Save(ctx, storage.Handle{Type: storage.ConfigFile}, b, storage.SaveOptions{IfNotExists: true}); err != nil {
		return nil, fmt.Errorf("save config: %w", err)
	}
	return r, nil
}

// Open opens an existing repository with a password. keyHint, if not empty,
// names the key to try.
func Open(ctx context.Context, be storage.Backend, password, keyHint string) (*Repository, error) {
	cb, err := storage.LoadAll(ctx, be, storage.Handle{Type: storage.ConfigFile})
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w (no config object; run 'bunker init' first)", be.Location(), ErrNoRepository)
		}
		return nil, fmt.Errorf("load config: %w", err)
	}
	if _, err := format.ParseHeader(cb, format.TypeConfig); err != nil {
		return nil, fmt.Errorf("%s: config: %w", be.Location(), err)
	}
	master, name, damagedKeys, err := findKey(ctx, be, password, keyHint)
	if err != nil {
		return nil, err
	}
	key, err := crypto.NewKey(master)
	if err != nil {
		return nil, err
	}
	cfg, err := decodeConfig(key, cb)
	if err != nil {
		if errors.Is(err, crypto.ErrUnauthenticated) {
			return nil, fmt.Errorf("config does not open with the master key of key %s: %w", shortName(name), err)
		}
		return nil, err
	}
	r := &Repository{be: be, cfg: cfg, master: master, key: key, keyName: name, damagedKeys: damagedKeys}
	if err := r.setup(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Repository) setup() error {
	level := zstd.SpeedFastest
	switch r.cfg.Compression {
	case "zstd-default":
		level = zstd.SpeedDefault
	case "zstd-better":
		level = zstd.SpeedBetterCompression
	case "zstd-best":
		level = zstd.SpeedBestCompression
	}
	codec, err := pack.NewCodec(r.key, level)
	if err != nil {
		return err
	}
	if r.cfg.Compression == "none" {
		codec.DisableCompression()
	}
	r.codec = codec
	if r.cfg.ObjectLock != nil {
		r.be = &lockingBackend{Backend: r.be, cfg: *r.cfg.ObjectLock, now: time.Now}
	}
	r.idx = index.New()
	r.log = slog.New(slog.DiscardHandler)
	r.hasherPool.New = func() any {
		h, err := blake3.NewKeyed(r.cfg.IDKey)
		if err != nil {
			panic(err) // key length validated
		}
		return h
	}
	r.w.init(r)
	return nil
}

// SetLogger sets the logger for background events.
func (r *Repository) SetLogger(l *slog.Logger) { r.log = l }

// Logger returns the logger warnings go to.
func (r *Repository) Logger() *slog.Logger { return r.log }

// Backend returns the storage backend.
func (r *Repository) Backend() storage.Backend { return r.be }

// Config returns a copy of the configuration.
func (r *Repository) Config() Config { return *r.cfg }

// Index returns the in-memory index.
func (r *Repository) Index() *index.Index { return r.idx }

// Key returns the master sealing key.
func (r *Repository) Key() *crypto.Key { return r.key }

// Codec returns the blob codec.
func (r *Repository) Codec() *pack.Codec { return r.codec }

// Hash computes the blob ID of plaintext: keyed BLAKE3-256.
func (r *Repository) Hash(data []byte) ID {
	h := r.hasherPool.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	r.hasherPool.Put(h)
	return id
}

// Close releases resources. It does not flush.
//
// It stops the pack uploaders: an upload in flight is cancelled, and data
// not flushed is not stored (call Flush first to keep it). The repository
// must not be written to during or after Close; reading still works.
func (r *Repository) Close() error {
	w := &r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started || w.closed {
		return nil
	}
	w.closed = true
	w.cancel()
	for w.busy > 0 {
		w.idle.Wait()
	}
	close(w.queue)
	return nil
}

func randomBytes(n int) []byte { return crypto.Random(n) }

// SetClock replaces the local clock (tests and simulations). Only session
// bookkeeping uses it; the protocol's deadlines use the store's clock.
func (r *Repository) SetClock(now func() time.Time) { r.clock = now }

func (r *Repository) now() time.Time {
	if r.clock != nil {
		return r.clock()
	}
	return time.Now()
}
