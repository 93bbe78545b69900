package gcs

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	gstorage "cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Backend stores a repository in a Google Cloud Storage bucket. It is safe
// for concurrent use.
type Backend struct {
	cfg       Config
	location  string
	keys      objstore.Layout
	client    *gstorage.Client
	bucket    *gstorage.BucketHandle
	transport *http.Transport // owned, when the backend made the HTTP client; else nil
	closed    atomic.Bool
}

var _ storage.Backend = (*Backend)(nil)

// Open returns the backend of the repository cfg names. A missing bucket
// or repository is not an error (the engine finds out when it reads the
// config); rejected credentials (storage.ErrAuth) and an unreachable
// service are.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Probe with the one read every use of the repository needs anyway,
	// so a credential that may only read and write objects passes too.
	_, err = b.object(storage.Handle{Type: storage.ConfigFile}).Attrs(ctx)
	if err = mapErr(err, false); err != nil && !errors.Is(err, storage.ErrNotExist) && !errors.Is(err, storage.ErrPermission) {
		_ = b.Close()
		return nil, fmt.Errorf("%s: open: %w", b.location, err)
	}
	return b, nil
}

// Create returns the backend of a new repository, creating the bucket (in
// Config.ProjectID) when it is missing. It fails wrapping storage.ErrExists
// when the prefix already holds a repository config.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) (*Backend, error) {
		_ = b.Close()
		return nil, fmt.Errorf("%s: "+format, append([]any{b.location}, args...)...)
	}
	_, err = b.bucket.Attrs(ctx)
	switch err = mapErr(err, false); {
	case errors.Is(err, storage.ErrNotExist):
		if cfg.ProjectID == "" && cfg.EmulatorHost == "" {
			return fail("create bucket %s: %w", cfg.Bucket,
				storage.Permanent(errors.New("the bucket does not exist and GOOGLE_PROJECT_ID is not set")))
		}
		project := cfg.ProjectID
		if project == "" {
			project = "bunker-test" // emulators ignore it, but it may not be empty
		}
		// 409: created meanwhile (or taken by another project, which
		// the config probe below then reports).
		if err := b.bucket.Create(ctx, project, nil); err != nil && httpCode(err) != http.StatusConflict {
			return fail("create bucket %s: %w", cfg.Bucket, mapErr(err, false))
		}
	case errors.Is(err, storage.ErrPermission):
		// A credential limited to objects may not read bucket metadata;
		// the config probe decides.
	case err != nil:
		return fail("create: bucket %s: %w", cfg.Bucket, err)
	}
	h := storage.Handle{Type: storage.ConfigFile}
	_, err = b.object(h).Attrs(ctx)
	switch err = mapErr(err, false); {
	case err == nil:
		return fail("create: %v: %w", h, storage.ErrExists)
	case errors.Is(err, storage.ErrNotExist):
		return b, nil
	default:
		return fail("create: stat %v: %w", h, err)
	}
}

// httpCode is the HTTP status of a JSON API error, or 0.
func httpCode(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// newBackend builds the client of cfg without contacting the service.
func newBackend(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, storage.Permanent(err)
	}
	b := &Backend{cfg: cfg, location: cfg.location(), keys: objstore.NewLayout(cfg.Prefix)}
	opts := []option.ClientOption{gstorage.WithJSONReads(), option.WithUserAgent("bunker")}
	switch {
	case cfg.EmulatorHost != "":
		ep, err := emulatorEndpoint(cfg.EmulatorHost)
		if err != nil {
			return nil, storage.Permanent(fmt.Errorf("%s: %w", b.location, err))
		}
		// An HTTP client of our own, so Close can end its connections.
		b.transport = newTransport()
		if cfg.Dial != nil {
			b.transport.DialContext, b.transport.Proxy = cfg.Dial, nil
		}
		opts = append(opts, option.WithoutAuthentication(), option.WithEndpoint(ep),
			option.WithHTTPClient(&http.Client{Transport: b.transport}))
	default:
		if cfg.CredentialsFile != "" {
			typ, err := credentialsType(cfg.CredentialsFile)
			if err != nil {
				return nil, storage.Permanent(fmt.Errorf("%s: GOOGLE_APPLICATION_CREDENTIALS: %w", b.location, err))
			}
			opts = append(opts, option.WithAuthCredentialsFile(typ, cfg.CredentialsFile))
		}
		if cfg.Endpoint != "" {
			opts = append(opts, option.WithEndpoint(cfg.Endpoint))
		}
	}
	client, err := gstorage.NewClient(ctx, opts...)
	if err != nil {
		if b.transport != nil {
			b.transport.CloseIdleConnections()
		}
		return nil, storage.Permanent(fmt.Errorf("%s: %w", b.location, err))
	}
	attempts, delay := cfg.MaxAttempts, cfg.RetryDelay
	if attempts == 0 {
		attempts = DefaultMaxAttempts
	}
	if delay == 0 {
		delay = 200 * time.Millisecond
	}
	client.SetRetry(gstorage.WithMaxAttempts(attempts),
		gstorage.WithBackoff(gax.Backoff{Initial: delay, Max: 2 * time.Second, Multiplier: 2}))
	b.client = client
	b.bucket = client.Bucket(cfg.Bucket)
	return b, nil
}

func newTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return tr
}

// credentialsType reads the "type" of a JSON credentials file, so that the
// library is told which kind of credential to expect.
func credentialsType(file string) (option.CredentialsType, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("%s: not a JSON credentials file: %w", file, err)
	}
	switch t := option.CredentialsType(head.Type); t {
	case option.ServiceAccount, option.AuthorizedUser, option.ImpersonatedServiceAccount, option.ExternalAccount:
		return t, nil
	default:
		return "", fmt.Errorf("%s: unsupported credentials type %q", file, head.Type)
	}
}

// Location returns "gs:bucket:/prefix" as the user gave it.
func (b *Backend) Location() string { return b.location }

// Features reports atomic conditional create (ifGenerationMatch=0).
func (b *Backend) Features() storage.Features {
	return storage.Features{ConditionalCreate: true}
}

// Close releases the client. Later calls of the backend fail.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	err := b.client.Close()
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	return err
}

// errClosed is returned by the methods of a closed backend.
var errClosed = storage.Permanent(errors.New("backend is closed"))

func (b *Backend) object(h storage.Handle) *gstorage.ObjectHandle {
	return b.bucket.Object(b.keys.Key(h))
}

// errorf builds the error of an operation on an object:
// "<location>: <op> <handle>: <err>".
func (b *Backend) errorf(op string, h storage.Handle, err error) error {
	return fmt.Errorf("%s: %s %v: %w", b.location, op, h, err)
}

// check validates a handle and the state of the backend and context.
func (b *Backend) check(ctx context.Context, op string, h storage.Handle) error {
	if err := h.Valid(); err != nil {
		return storage.Permanent(fmt.Errorf("%s: %s: %w", b.location, op, err))
	}
	if b.closed.Load() {
		return b.errorf(op, h, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return b.errorf(op, h, err)
	}
	return nil
}

// Save uploads data as the object of h, in one request (or, with
// Config.ChunkSize, as a resumable upload); the object appears whole when
// the upload is finalized, or not at all. The CRC32C of data goes with it
// and the service checks it. With opts.IfNotExists the upload carries
// ifGenerationMatch=0, which fails with storage.ErrExists when the object
// exists. Packs get Config.StorageClassPacks. opts.RetainUntil is ignored
// (see the package documentation).
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := b.check(ctx, "save", h); err != nil {
		return err
	}
	o := b.object(h)
	if opts.IfNotExists {
		o = o.If(gstorage.Conditions{DoesNotExist: true})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the upload when Write fails
	w := o.NewWriter(ctx)
	w.ContentType = "application/octet-stream"
	w.CRC32C = crc32.Checksum(data, castagnoli)
	w.SendCRC32C = true
	w.ChunkSize = 0
	if b.cfg.ChunkSize > 0 && len(data) > b.cfg.ChunkSize {
		w.ChunkSize = b.cfg.ChunkSize
	}
	if h.Type == storage.PackFile && !opts.Metadata && b.cfg.StorageClassPacks != "" {
		w.StorageClass = b.cfg.StorageClassPacks
	}
	_, err := io.Copy(w, bytes.NewReader(data))
	if err != nil {
		cancel()
		_ = w.Close()
		return b.errorf("save", h, mapErr(err, opts.IfNotExists))
	}
	if err := w.Close(); err != nil {
		return b.errorf("save", h, mapErr(err, opts.IfNotExists))
	}
	return nil
}

// Load calls fn with a reader of length bytes of the object from offset
// (length 0: to the end), streamed from one ranged request. A range past
// the end of the object is a permanent error.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := b.check(ctx, "load", h); err != nil {
		return err
	}
	if length < 0 || offset < 0 {
		return storage.Permanent(b.errorf("load", h, fmt.Errorf("invalid range: offset %d, length %d", offset, length)))
	}
	n := int64(length)
	if length == 0 {
		n = -1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := b.object(h).NewRangeReader(ctx, offset, n)
	if err != nil {
		if httpCode(err) != http.StatusRequestedRangeNotSatisfiable {
			return b.errorf("load", h, mapErr(err, false))
		}
		// The offset is at or past the end. Reading nothing from the
		// very end is fine, as for a file; anything else is an error.
		fi, serr := b.Stat(ctx, h)
		if serr != nil {
			return serr
		}
		if err := objstore.LoadAtEnd(fi.Size, length, offset, fn); err != nil {
			return b.errorf("load", h, err)
		}
		return nil
	}
	defer func() { _ = r.Close() }()
	size := r.Attrs.Size
	if offset > size || length > 0 && offset+int64(length) > size {
		return storage.Permanent(b.errorf("load", h, fmt.Errorf("range offset %d, length %d is past the end of the %d-byte object", offset, length, size)))
	}
	rd := &objstore.ReplyReader{R: r}
	if err := fn(rd); err != nil {
		if rd.Err == nil {
			return b.errorf("load", h, err) // fn's own error
		}
		return b.errorf("load", h, mapErr(err, false))
	}
	return nil
}

// Stat returns the size and creation time (of the current generation) of
// an object.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := b.check(ctx, "stat", h); err != nil {
		return storage.FileInfo{}, err
	}
	attrs, err := b.object(h).Attrs(ctx)
	if err != nil {
		return storage.FileInfo{}, b.errorf("stat", h, mapErr(err, false))
	}
	return storage.FileInfo{Name: h.Name, Size: attrs.Size, ModTime: modTime(attrs)}, nil
}

// modTime is the time the current generation of an object was written.
func modTime(a *gstorage.ObjectAttrs) time.Time {
	if !a.Created.IsZero() {
		return a.Created
	}
	return a.Updated
}

// List calls fn for every object of type t. Objects whose names are not
// valid object names, and packs outside their shard (which Load could not
// find), are skipped. An error from fn stops the listing and is returned
// as it is.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if b.closed.Load() {
		return fmt.Errorf("%s: list %s: %w", b.location, t, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: list %s: %w", b.location, t, err)
	}
	prefix, ok := b.keys.ListPrefix(t)
	if !ok {
		return storage.Permanent(fmt.Errorf("%s: list %q: unknown file type", b.location, t))
	}
	q := &gstorage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Created", "Updated"}); err != nil {
		return fmt.Errorf("%s: list %s: %w", b.location, t, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	it := b.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			err = mapErr(err, false)
			if errors.Is(err, storage.ErrNotExist) {
				return nil // no bucket, no objects
			}
			return fmt.Errorf("%s: list %s: %w", b.location, t, err)
		}
		h, ok := b.keys.HandleOf(attrs.Name)
		if !ok || h.Type != t {
			continue
		}
		if err := fn(storage.FileInfo{Name: h.Name, Size: attrs.Size, ModTime: modTime(attrs)}); err != nil {
			return err
		}
	}
}

// Remove deletes an object; a missing object (or bucket) is not an error.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := b.check(ctx, "remove", h); err != nil {
		return err
	}
	err := mapErr(b.object(h).Delete(ctx), false)
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return b.errorf("remove", h, err)
	}
	return nil
}
