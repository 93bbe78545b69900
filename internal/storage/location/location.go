// Package location opens the storage backend a repository location names
// and wraps it in the decorators every backend gets: retries with backoff
// for transient failures, bounded connections and transfer rates, and a
// local cache of metadata for remote stores.
//
// Locations:
//
//	/path/to/repo, local:/path           a local directory
//	s3:https://host/bucket/prefix        S3 and S3-compatible stores
//	sftp:user@host:/path                 an SFTP server
//	azure:container:/prefix              Azure Blob Storage
//	gs:bucket:/prefix                    Google Cloud Storage
//	rest:https://user@host:port/repo     a Bunker REST server (bunker serve)
//
// Each backend package documents its own form and environment variables.
package location

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/azure"
	"github.com/bunkerbackup/bunker/internal/storage/cache"
	"github.com/bunkerbackup/bunker/internal/storage/gcs"
	"github.com/bunkerbackup/bunker/internal/storage/limit"
	"github.com/bunkerbackup/bunker/internal/storage/local"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
	"github.com/bunkerbackup/bunker/internal/storage/retry"
	"github.com/bunkerbackup/bunker/internal/storage/s3"
	"github.com/bunkerbackup/bunker/internal/storage/sftp"
)

// ErrUnknownScheme is returned for a location whose scheme no backend has.
var ErrUnknownScheme = errors.New("unknown location scheme")

// Options modify Open.
type Options struct {
	// Create creates the repository's container (directory, bucket)
	// when it is missing.
	Create bool
	// ObjectLock, with Create, makes the bucket with Object Lock enabled
	// (S3).
	ObjectLock bool
	// Getenv reads configuration; nil means os.Getenv.
	Getenv func(string) string
	// Limits bound connections and transfer rates; zero is unlimited.
	Limits limit.Options
	// CacheDir is the root of the metadata caches; each repository
	// location gets a subdirectory. Empty disables caching. Local
	// repositories are never cached.
	CacheDir string
	// Retry tunes the retries.
	Retry retry.Options
	// AsOf, when non-zero, opens a read-only view of the repository as
	// it was at that moment (versioned object stores only).
	AsOf time.Time
	// Policy, when set, limits the schemes, the hosts and the identity
	// the location may use (a location given by someone else).
	Policy *Policy
}

// Split returns the scheme of a location ("local" for a plain path, also
// C:\ paths on Windows) and the rest.
func Split(loc string) (scheme, spec string) {
	scheme, spec, found := strings.Cut(loc, ":")
	if !found || len(scheme) == 1 || strings.ContainsAny(scheme, `/\.`) {
		return "local", loc
	}
	return scheme, spec
}

// Remote reports whether the location is on another machine.
func Remote(loc string) bool {
	scheme, _ := Split(loc)
	return scheme != "local"
}

// Open opens the backend of loc with its decorators.
func Open(ctx context.Context, loc string, opts Options) (storage.Backend, error) {
	if loc == "" {
		return nil, errors.New("no repository given: use -r/--repo or set BUNKER_REPOSITORY")
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	be, err := openRaw(ctx, loc, opts)
	if err != nil {
		return nil, err
	}
	if !opts.AsOf.IsZero() {
		v, ok := storage.Find[storage.Versioner](be)
		if !ok {
			_ = be.Close()
			return nil, fmt.Errorf("%s: --repo-as-of needs a store that keeps old versions of objects (a versioned S3 bucket); this one does not", be.Location())
		}
		view, err := v.AsOf(ctx, opts.AsOf)
		if err != nil {
			_ = be.Close()
			return nil, fmt.Errorf("%s as of %s: %w", be.Location(), opts.AsOf.Format(time.RFC3339), err)
		}
		be = view
	}
	scheme, _ := Split(loc)
	if scheme == "local" {
		// No retries or cache for a local directory, but the bandwidth
		// limits hold (a "local" path may be an NFS or SMB mount).
		return limit.New(be, opts.Limits), nil
	}
	be = retry.New(be, opts.Retry)
	be = limit.New(be, opts.Limits)
	if opts.CacheDir != "" {
		dir := CacheDir(opts.CacheDir, be.Location())
		if !opts.AsOf.IsZero() {
			dir += "-asof"
		}
		if c, err := cache.New(be, dir); err == nil {
			be = c
		}
	}
	return be, nil
}

// CacheDir returns the cache directory of the repository at loc below root.
func CacheDir(root, loc string) string {
	sum := sha256.Sum256([]byte(loc))
	return filepath.Join(root, hex.EncodeToString(sum[:12]))
}

func openRaw(ctx context.Context, loc string, opts Options) (storage.Backend, error) {
	if err := opts.Policy.CheckScheme(loc); err != nil {
		return nil, err
	}
	scheme, spec := Split(loc)
	var dial func(context.Context, string, string) (net.Conn, error)
	if opts.Policy != nil {
		dial = opts.Policy.Dialer(30 * time.Second)
	}
	ambient := opts.Policy.AmbientCredentials()
	switch scheme {
	case "local":
		dir, err := filepath.Abs(spec)
		if err != nil {
			return nil, err
		}
		do := local.New
		if opts.Create {
			do = local.Create
		}
		be, err := do(dir)
		if err != nil {
			return nil, err
		}
		return be, nil
	case "s3":
		return connect(ctx, spec, opts, s3.ParseConfig, s3.Open, s3.Create, func(c *s3.Config) {
			c.ObjectLock, c.Dial, c.NoAmbientCredentials = opts.ObjectLock, dial, !ambient
		})
	case "sftp":
		return connect(ctx, spec, opts, sftp.ParseConfig, sftp.Open, sftp.Create, func(c *sftp.Config) { c.Dial = dial })
	case "azure":
		return connect(ctx, spec, opts, azure.ParseConfig, azure.Open, azure.Create, func(c *azure.Config) { c.Dial = dial })
	case "gs":
		return connect(ctx, spec, opts, gcs.ParseConfig, gcs.Open, gcs.Create, func(c *gcs.Config) {
			c.Dial, c.NoAmbientCredentials = dial, !ambient
		})
	case "rest":
		return connect(ctx, spec, opts, rest.ParseConfig, rest.Open, rest.Create, func(c *rest.Config) { c.Dial = dial })
	}
	return nil, fmt.Errorf("repository location %q: %w %q (known: local path, s3:, sftp:, azure:, gs:, rest:)", loc, ErrUnknownScheme, scheme)
}

// connect parses a backend's location spec, lets adjust amend the config,
// and opens (or, with opts.Create, creates) the backend.
func connect[C any, B storage.Backend](ctx context.Context, spec string, opts Options,
	parse func(string, func(string) string) (C, error), open, create func(context.Context, C) (B, error), adjust ...func(*C)) (storage.Backend, error) {
	cfg, err := parse(spec, opts.Getenv)
	if err != nil {
		return nil, err
	}
	for _, f := range adjust {
		f(&cfg)
	}
	do := open
	if opts.Create {
		do = create
	}
	be, err := do(ctx, cfg)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return be, nil
}
