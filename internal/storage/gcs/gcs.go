package gcs

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/auth/httptransport"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	storagev1 "google.golang.org/api/storage/v1"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// scopes are the OAuth scopes the backend asks for: those the
// cloud.google.com/go/storage client asked for, so that a credential
// restricted to them works as before.
var scopes = []string{storagev1.DevstorageFullControlScope, storagev1.CloudPlatformScope}

// Backend stores a repository in a Google Cloud Storage bucket. It is safe
// for concurrent use.
type Backend struct {
	cfg       Config
	location  string
	keys      objstore.Layout
	svc       *storagev1.Service
	transport *http.Transport // carries every request to the service; owned
	attempts  int             // tries of an idempotent request (Config.MaxAttempts)
	delay     time.Duration   // first pause between them (Config.RetryDelay)
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
	_, err = b.attrs(ctx, storage.Handle{Type: storage.ConfigFile})
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
	err = b.retry(ctx, true, func() error {
		_, err := b.svc.Buckets.Get(cfg.Bucket).Fields("name").Context(ctx).Do()
		return err
	})
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
		err := b.retry(ctx, true, func() error {
			_, err := b.svc.Buckets.Insert(project, &storagev1.Bucket{Name: cfg.Bucket}).Fields("name").Context(ctx).Do()
			return err
		})
		if err != nil && httpCode(err) != http.StatusConflict {
			return fail("create bucket %s: %w", cfg.Bucket, mapErr(err, false))
		}
	case errors.Is(err, storage.ErrPermission):
		// A credential limited to objects may not read bucket metadata;
		// the config probe decides.
	case err != nil:
		return fail("create: bucket %s: %w", cfg.Bucket, err)
	}
	h := storage.Handle{Type: storage.ConfigFile}
	_, err = b.attrs(ctx, h)
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

// newBackend builds the client of cfg without contacting the service
// (but for reading a credentials file, and what finding the application
// default credentials takes).
//
// Every request to the service goes through an HTTP transport of the
// backend's own, which Config.Dial (the policy's checked dialer) makes
// the connections of, and which Close ends the connections of. With
// credentials, the auth library's transport adds the token to each
// request on top of it; the token requests themselves (to the token
// endpoint of the credentials, or to the metadata server) go through the
// auth library's own client, as before, since a policy's dialer refuses
// the link-local metadata server.
func newBackend(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, storage.Permanent(err)
	}
	b := &Backend{cfg: cfg, location: cfg.location(), keys: objstore.NewLayout(cfg.Prefix),
		attempts: cfg.MaxAttempts, delay: cfg.RetryDelay}
	if b.attempts == 0 {
		b.attempts = DefaultMaxAttempts
	}
	if b.delay == 0 {
		b.delay = 200 * time.Millisecond
	}
	b.transport = newTransport()
	if cfg.Dial != nil {
		b.transport.DialContext, b.transport.Proxy = cfg.Dial, nil
	}
	fail := func(err error) (*Backend, error) {
		b.transport.CloseIdleConnections()
		return nil, storage.Permanent(fmt.Errorf("%s: %w", b.location, err))
	}
	var opts []option.ClientOption
	switch {
	case cfg.EmulatorHost != "":
		ep, err := emulatorEndpoint(cfg.EmulatorHost)
		if err != nil {
			return fail(err)
		}
		opts = append(opts, option.WithEndpoint(ep), option.WithHTTPClient(&http.Client{Transport: b.transport}))
	default:
		var creds *auth.Credentials
		var err error
		detect := &credentials.DetectOptions{Scopes: scopes}
		if cfg.CredentialsFile != "" {
			typ, terr := credentialsType(cfg.CredentialsFile)
			if terr != nil {
				return fail(fmt.Errorf("GOOGLE_APPLICATION_CREDENTIALS: %w", terr))
			}
			creds, err = credentials.NewCredentialsFromFile(typ, cfg.CredentialsFile, detect)
		} else {
			creds, err = credentials.DetectDefault(detect)
		}
		if err != nil {
			return fail(err)
		}
		client, err := httptransport.NewClient(&httptransport.Options{
			BaseRoundTripper: b.transport,
			Credentials:      creds,
			DisableTelemetry: true,
		})
		if err != nil {
			return fail(err)
		}
		opts = append(opts, option.WithHTTPClient(client))
		if cfg.Endpoint != "" {
			opts = append(opts, option.WithEndpoint(cfg.Endpoint))
		}
	}
	svc, err := storagev1.NewService(ctx, opts...)
	if err != nil {
		return fail(err)
	}
	svc.UserAgent = "bunker"
	b.svc = svc
	return b, nil
}

func newTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return tr
}

// credentialsType reads the "type" of a JSON credentials file, so that the
// auth library is told which kind of credential to expect.
func credentialsType(file string) (credentials.CredType, error) {
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
	switch t := credentials.CredType(head.Type); t {
	case credentials.ServiceAccount, credentials.AuthorizedUser, credentials.ImpersonatedServiceAccount, credentials.ExternalAccount:
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

// Close releases the client's connections. Later calls of the backend
// fail.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.transport.CloseIdleConnections()
	return nil
}

// errClosed is returned by the methods of a closed backend.
var errClosed = storage.Permanent(errors.New("backend is closed"))

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
//
// Only a conditional upload is tried again after a transient error, as
// the cloud.google.com/go/storage client did: it is the idempotent one.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := b.check(ctx, "save", h); err != nil {
		return err
	}
	obj := &storagev1.Object{
		Name:        b.keys.Key(h),
		ContentType: "application/octet-stream",
		Crc32c:      encodeCRC(crc32.Checksum(data, castagnoli)),
	}
	if h.Type == storage.PackFile && !opts.Metadata && b.cfg.StorageClassPacks != "" {
		obj.StorageClass = b.cfg.StorageClassPacks
	}
	// ChunkSize 0 sends the object and its metadata in one multipart
	// request; a positive one makes larger objects resumable uploads, in
	// chunks each retried on its own (for up to 32 s, as before).
	chunk := 0
	if b.cfg.ChunkSize > 0 && len(data) > b.cfg.ChunkSize {
		chunk = b.cfg.ChunkSize
	}
	err := b.retry(ctx, opts.IfNotExists, func() error {
		call := b.svc.Objects.Insert(b.cfg.Bucket, obj).
			Media(bytes.NewReader(data), googleapi.ChunkSize(chunk), googleapi.ContentType(obj.ContentType)).
			Fields("name").Context(ctx)
		if opts.IfNotExists {
			call = call.IfGenerationMatch(0)
		}
		_, err := call.Do()
		return err
	})
	if err != nil {
		return b.errorf("save", h, mapErr(err, opts.IfNotExists))
	}
	return nil
}

// encodeCRC is a CRC32C as the JSON API writes it: the big-endian bytes,
// in base64.
func encodeCRC(c uint32) string {
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], c)
	return base64.StdEncoding.EncodeToString(buf[:])
}

// attrs reads the metadata of the object of h that the backend uses,
// trying again after transient errors.
func (b *Backend) attrs(ctx context.Context, h storage.Handle) (*storagev1.Object, error) {
	var obj *storagev1.Object
	err := b.retry(ctx, true, func() error {
		var err error
		obj, err = b.svc.Objects.Get(b.cfg.Bucket, b.keys.Key(h)).
			Fields("name", "size", "timeCreated", "updated", "generation").Context(ctx).Do()
		return err
	})
	return obj, err
}

// Stat returns the size and creation time (of the current generation) of
// an object.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := b.check(ctx, "stat", h); err != nil {
		return storage.FileInfo{}, err
	}
	obj, err := b.attrs(ctx, h)
	if err != nil {
		return storage.FileInfo{}, b.errorf("stat", h, mapErr(err, false))
	}
	size, err := objectSize(obj)
	if err != nil {
		return storage.FileInfo{}, b.errorf("stat", h, err)
	}
	return storage.FileInfo{Name: h.Name, Size: size, ModTime: modTime(obj)}, nil
}

// objectSize is the size of an object as an int64.
func objectSize(obj *storagev1.Object) (int64, error) {
	if obj.Size > math.MaxInt64 {
		return 0, errNotGCS
	}
	return int64(obj.Size), nil
}

// modTime is the time the current generation of an object was written.
// A time that does not parse counts as missing, as it did in the
// cloud.google.com/go/storage client.
func modTime(obj *storagev1.Object) time.Time {
	for _, s := range []string{obj.TimeCreated, obj.Updated} {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	return time.Time{}
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
	fail := func(err error) error { return fmt.Errorf("%s: list %s: %w", b.location, t, err) }
	token := ""
	seen := map[string]bool{}
	for {
		var page *storagev1.Objects
		err := b.retry(ctx, true, func() error {
			var err error
			page, err = b.svc.Objects.List(b.cfg.Bucket).Prefix(prefix).PageToken(token).
				Fields("items(name,size,timeCreated,updated)", "nextPageToken").Context(ctx).Do()
			return err
		})
		if err != nil {
			err = mapErr(err, false)
			if errors.Is(err, storage.ErrNotExist) {
				return nil // no bucket, no objects
			}
			return fail(err)
		}
		for _, obj := range page.Items {
			if obj == nil {
				continue
			}
			h, ok := b.keys.HandleOf(obj.Name)
			if !ok || h.Type != t {
				continue
			}
			size, err := objectSize(obj)
			if err != nil {
				return fail(err)
			}
			if err := fn(storage.FileInfo{Name: h.Name, Size: size, ModTime: modTime(obj)}); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		// A service that hands out a page token again would have the
		// listing go round for ever.
		if seen[page.NextPageToken] {
			return fail(errNotGCS)
		}
		seen[page.NextPageToken] = true
		token = page.NextPageToken
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
	}
}

// Remove deletes an object; a missing object (or bucket) is not an error.
// It is not tried again after a transient error (the retry decorator
// above decides), as the cloud.google.com/go/storage client did not for a
// delete without a generation.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := b.check(ctx, "remove", h); err != nil {
		return err
	}
	err := mapErr(b.svc.Objects.Delete(b.cfg.Bucket, b.keys.Key(h)).Context(ctx).Do(), false)
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return b.errorf("remove", h, err)
	}
	return nil
}
