package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// Backend stores a repository in an S3 bucket under a key prefix. It is
// safe for concurrent use, also by several processes.
type Backend struct {
	cfg       Config
	client    *minio.Client
	core      minio.Core
	transport *http.Transport // ours to close, nil when Config.Transport is set
	http      *http.Client    // for the requests minio-go cannot make
	where     string          // the location without options, for messages
	keys      objstore.Layout
	sse       encrypt.ServerSide

	features  storage.Features
	versioned bool // versioning enabled or suspended: objects have versions
}

var (
	_ storage.Backend   = (*Backend)(nil)
	_ storage.Retainer  = (*Backend)(nil)
	_ storage.Versioner = (*Backend)(nil)
)

// newBackend makes the client of cfg, which must be valid.
func newBackend(cfg Config) (*Backend, error) {
	b := &Backend{cfg: cfg, where: cfg.base(), keys: objstore.NewLayout(cfg.Prefix)}
	rt := cfg.Transport
	if rt == nil {
		tr, err := minio.DefaultTransport(!cfg.Insecure)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.where, err)
		}
		if cfg.Dial != nil {
			tr.DialContext, tr.Proxy = cfg.Dial, nil
		}
		b.transport, rt = tr, tr
	}
	rt = replyFilter{next: rt}
	b.http = &http.Client{Transport: rt}
	lookup := map[string]minio.BucketLookupType{
		LookupAuto: minio.BucketLookupAuto, LookupPath: minio.BucketLookupPath, LookupDNS: minio.BucketLookupDNS,
	}[cfg.BucketLookup]
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        cfg.credentials(),
		Secure:       !cfg.Insecure,
		Transport:    rt,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.where, storage.Permanent(err))
	}
	b.client, b.core = client, minio.Core{Client: client}
	switch {
	case cfg.SSECKey != nil:
		b.sse, err = encrypt.NewSSEC(cfg.SSECKey)
	case cfg.SSE == SSES3:
		b.sse = encrypt.NewSSE()
	case cfg.SSE == SSEKMS:
		b.sse, err = encrypt.NewSSEKMS(cfg.SSEKMSKeyID, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: server-side encryption: %w", b.where, storage.Permanent(err))
	}
	return b, nil
}

// credentials is the credential chain of the config: the static keys if
// set, else the shared credentials file, else the instance's IAM role.
func (c *Config) credentials() *credentials.Credentials {
	if c.AccessKeyID != "" {
		return credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	}
	profile := c.Profile
	if profile == "" {
		profile = "default"
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.FileAWSCredentials{Filename: c.CredentialsFile, Profile: profile},
		&credentials.IAM{},
	})
}

// Open opens the repository cfg names. It asks the store which features
// the bucket has (versioning, Object Lock, conditional writes; see
// Features). A missing bucket is not an error here — the repository is
// then found missing on its first read — but an unreachable store or
// rejected credentials are.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.base(), storage.Permanent(err))
	}
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := b.probe(ctx); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// Create makes the bucket if it is missing (with Object Lock if
// cfg.ObjectLock) and opens the repository. It fails wrapping
// storage.ErrExists if a repository config is already there, and
// clearly if cfg.ObjectLock is set but the existing bucket has no Object
// Lock.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.base(), storage.Permanent(err))
	}
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.create(ctx); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Backend) create(ctx context.Context) error {
	exists, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("%s: create: bucket %s: %w", b.where, b.cfg.Bucket, mapErr(err))
	}
	if !exists {
		err := b.client.MakeBucket(ctx, b.cfg.Bucket, minio.MakeBucketOptions{Region: b.cfg.Region, ObjectLocking: b.cfg.ObjectLock})
		if err != nil && codeOf(err) != "BucketAlreadyOwnedByYou" {
			return fmt.Errorf("%s: create: make bucket %s: %w", b.where, b.cfg.Bucket, mapErr(err))
		}
	}
	found, err := b.probe(ctx)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: create: bucket %s is still missing after it was made: %w", b.where, b.cfg.Bucket, storage.ErrNotExist)
	}
	if b.cfg.ObjectLock && !b.features.ObjectLock {
		return fmt.Errorf("%s: create: bucket %s exists without Object Lock, which can only be enabled when a bucket is made: use a new bucket, or drop the object-lock option: %w",
			b.where, b.cfg.Bucket, storage.Permanent(errors.New("bucket has no Object Lock")))
	}
	h := storage.Handle{Type: storage.ConfigFile}
	_, err = b.Stat(ctx, h)
	switch {
	case err == nil:
		return fmt.Errorf("%s: create: a repository is already there: %s: %w", b.where, h, storage.ErrExists)
	case !errors.Is(err, storage.ErrNotExist):
		return err
	}
	return nil
}

// probe finds out which features the bucket has. It reports false if the
// bucket does not exist.
func (b *Backend) probe(ctx context.Context) (bool, error) {
	vc, err := b.client.GetBucketVersioning(ctx, b.cfg.Bucket)
	switch {
	case codeOf(err) == "NoSuchBucket":
		return false, nil
	case err != nil && !isUnsupported(err):
		return false, fmt.Errorf("%s: open: bucket versioning: %w", b.where, mapErr(err))
	}
	b.versioned = err == nil && (vc.Status == "Enabled" || vc.Status == "Suspended")

	lock, _, _, _, err := b.client.GetObjectLockConfig(ctx, b.cfg.Bucket)
	switch {
	case codeOf(err) == "NoSuchBucket":
		return false, nil
	case err != nil && !isUnsupported(err):
		return false, fmt.Errorf("%s: open: object lock configuration: %w", b.where, mapErr(err))
	}
	b.features.ObjectLock = err == nil && lock == "Enabled"

	switch b.cfg.ConditionalCreate {
	case CondOn:
		b.features.ConditionalCreate = true
	case CondAuto:
		ok, err := b.probeConditional(ctx)
		if err != nil {
			return false, err
		}
		b.features.ConditionalCreate = ok
	}
	return true, nil
}

// isUnsupported reports whether err says that the store lacks a feature,
// that it is not configured on the bucket, or that the credentials may not
// ask — as opposed to an outage or rejected credentials.
func isUnsupported(err error) bool {
	m := mapErr(err)
	return storage.IsPermanent(m) && !errors.Is(m, storage.ErrAuth)
}

// probeConditional finds out whether the store honours If-None-Match: *
// on PUT by writing a probe object (outside the folders of every object
// type) twice with it. The second write must fail with 412. The probe
// object is deleted afterwards (unless a default retention of the bucket
// keeps it).
func (b *Backend) probeConditional(ctx context.Context) (bool, error) {
	var r [8]byte
	_, _ = rand.Read(r[:])
	key := b.keys.Root() + ".bunker-probe-" + hex.EncodeToString(r[:])
	put := func() error {
		opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true}
		opts.SetMatchETagExcept("*")
		_, err := b.client.PutObject(ctx, b.cfg.Bucket, key, bytes.NewReader(nil), 0, opts)
		return err
	}
	check := func(err error) error {
		if m := mapErr(err); errors.Is(m, storage.ErrAuth) || !storage.IsPermanent(m) {
			return fmt.Errorf("%s: open: probe conditional writes: %w", b.where, m)
		}
		return nil
	}
	if err := put(); err != nil {
		// A refusal (read-only credentials, If-None-Match unsupported)
		// means no conditional creates; an outage is an error.
		return false, check(err)
	}
	err := put()
	_ = b.removeKey(context.WithoutCancel(ctx), key)
	if err == nil {
		return false, nil
	}
	if errors.Is(mapErr(err), storage.ErrExists) {
		return true, nil
	}
	return false, check(err)
}

// Location returns "s3:" and the location as it was given.
func (b *Backend) Location() string { return b.cfg.location() }

// Features reports conditional create when the store honours
// If-None-Match on PUT (probed at Open, or set by the
// conditional-create option) and Object Lock when the bucket has it
// enabled.
func (b *Backend) Features() storage.Features { return b.features }

// Close releases the idle connections.
func (b *Backend) Close() error {
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	return nil
}

// errorf formats an error of an operation on the backend.
func (b *Backend) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{b.where}, args...)...)
}

// invalid is the error of an operation on an invalid handle.
func (b *Backend) invalid(op string, err error) error {
	return b.errorf("%s: %w", op, storage.Permanent(err))
}

// storageClass is the storage class objects of type t are written with
// (data packs may go to a colder class than metadata).
func (b *Backend) storageClass(t storage.FileType, metadata bool) string {
	if t == storage.PackFile && !metadata && b.cfg.StorageClassPacks != "" {
		return b.cfg.StorageClassPacks
	}
	return b.cfg.StorageClass
}

// readSSE is the encryption a read must name: the SSE-C key, else none.
func (b *Backend) readSSE() encrypt.ServerSide {
	if b.sse != nil && b.sse.Type() == encrypt.SSEC {
		return b.sse
	}
	return nil
}

// retentionMode converts a lock mode.
func retentionMode(m storage.LockMode) (minio.RetentionMode, error) {
	switch m {
	case "", storage.LockCompliance:
		return minio.Compliance, nil
	case storage.LockGovernance:
		return minio.Governance, nil
	}
	return "", fmt.Errorf("unknown lock mode %q", m)
}

// Save writes data as the object of h in one PUT request, or as a
// multipart upload when it is larger than the part size; either way the
// object appears whole or not at all. With opts.IfNotExists it sends
// If-None-Match: * when the store honours it (Features.ConditionalCreate),
// else it checks for the object first, which is not atomic. With
// opts.RetainUntil on a bucket with Object Lock it writes the object with
// that retention.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := h.Valid(); err != nil {
		return b.invalid("save", err)
	}
	put := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		StorageClass:         b.storageClass(h.Type, opts.Metadata),
		ServerSideEncryption: b.sse,
		PartSize:             uint64(b.cfg.PartSize),
		// Over plain http minio-go signs the payload in aws-chunked
		// encoding; for an empty object that is a body of one final
		// chunk, which versitygw 1.8 leaves unread on the connection (and
		// then answers the garbage with 400 on the next request). An empty
		// payload needs no signature.
		DisableContentSha256: len(data) == 0,
	}
	if !opts.RetainUntil.IsZero() && b.features.ObjectLock {
		mode, err := retentionMode(opts.RetainMode)
		if err != nil {
			return b.errorf("save %v: %w", h, storage.Permanent(err))
		}
		put.Mode, put.RetainUntilDate = mode, opts.RetainUntil.UTC()
		// S3 wants a checksum on writes with a retention.
		put.SendContentMd5 = true
	}
	if opts.IfNotExists {
		if b.features.ConditionalCreate {
			put.SetMatchETagExcept("*")
			// One PUT of up to 5 GiB: some stores (versitygw) ignore
			// If-None-Match on CompleteMultipartUpload.
			put.DisableMultipart = true
		} else {
			_, err := b.Stat(ctx, h)
			if err == nil {
				return b.errorf("save %v: %w", h, storage.ErrExists)
			}
			if !errors.Is(err, storage.ErrNotExist) {
				return err
			}
		}
	}
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.keys.Key(h), bytes.NewReader(data), int64(len(data)), put)
	if err != nil {
		err = mapErr(err)
		if opts.IfNotExists && !storage.IsPermanent(err) && ctx.Err() == nil {
			// A store may answer 412 as soon as it has the headers and
			// reset the connection while the body is still on its way;
			// the client then sees only the reset. PUTs are atomic, so
			// an object there now was there before (or is ours from an
			// earlier attempt, which the retry decorator recognises).
			if _, serr := b.Stat(ctx, h); serr == nil {
				return b.errorf("save %v: %w (the store dropped the upload: %v)", h, storage.ErrExists, err)
			}
		}
		return b.errorf("save %v: %w", h, err)
	}
	return nil
}

// Load calls fn with a reader of length bytes of the object from offset
// (length 0: to the end), streamed from a ranged GET request. A range past
// the end of the object is an error.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return b.invalid("load", err)
	}
	return b.load(ctx, h, "", length, offset, fn)
}

// load is Load of a version (the current one if versionID is empty).
func (b *Backend) load(ctx context.Context, h storage.Handle, versionID string, length int, offset int64, fn func(rd io.Reader) error) error {
	if length < 0 || offset < 0 {
		return b.errorf("load %v: %w", h, storage.Permanent(fmt.Errorf("invalid range: offset %d, length %d", offset, length)))
	}
	opts := minio.GetObjectOptions{ServerSideEncryption: b.readSSE(), VersionID: versionID}
	ranged := length > 0 || offset > 0
	var err error
	switch {
	case length > 0:
		err = opts.SetRange(offset, offset+int64(length)-1)
	case offset > 0:
		err = opts.SetRange(offset, 0)
	}
	if err != nil {
		return b.errorf("load %v: %w", h, storage.Permanent(err))
	}
	pastEnd := func(size string) error {
		return b.errorf("load %v: %w", h, storage.Permanent(fmt.Errorf("range offset %d, length %d is past the end of the %sobject", offset, length, size)))
	}
	rc, info, hdr, err := b.core.GetObject(ctx, b.cfg.Bucket, b.keys.Key(h), opts)
	if err != nil {
		if codeOf(err) == "InvalidRange" {
			return pastEnd("")
		}
		return b.errorf("load %v: %w", h, mapErr(err))
	}
	defer func() { _ = rc.Close() }()
	n := info.Size
	if ranged {
		cr := hdr.Get("Content-Range")
		if cr == "" {
			// The store sent the whole object: cut the range out.
			size := n
			if offset > size || length > 0 && int64(length) > size-offset {
				return pastEnd(strconv.FormatInt(size, 10) + "-byte ")
			}
			if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
				return b.errorf("load %v: skip to offset %d: %w", h, offset, err)
			}
			n = size - offset
		} else if start, ok := rangeStart(cr); !ok || start != offset {
			return b.errorf("load %v: the store answered range offset %d with %q", h, offset, objstore.CleanText(cr, 64))
		}
	}
	if length > 0 {
		if n < int64(length) {
			return pastEnd("")
		}
		n = int64(length)
	}
	if err := fn(io.LimitReader(rc, n)); err != nil {
		return b.errorf("load %v: %w", h, err)
	}
	return nil
}

// rangeStart returns the first byte of a Content-Range "bytes a-b/size".
func rangeStart(cr string) (int64, bool) {
	s, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok = strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Stat returns the size and modification time of an object.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return storage.FileInfo{}, b.invalid("stat", err)
	}
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, b.keys.Key(h), minio.StatObjectOptions{ServerSideEncryption: b.readSSE()})
	if err != nil {
		return storage.FileInfo{}, b.errorf("stat %v: %w", h, mapErr(err))
	}
	return storage.FileInfo{Name: h.Name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List calls fn for every object of type t. Keys that are not the key of
// a valid handle of t are skipped. An error from fn stops the listing and
// is returned as it is.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	prefix, ok := b.keys.ListPrefix(t)
	switch {
	case !ok:
		return b.errorf("list %q: %w", t, storage.Permanent(errors.New("unknown file type")))
	case t == storage.ConfigFile:
		return objstore.ListConfig(ctx, b.Stat, fn)
	}
	return b.listKeys(ctx, prefix, false, func(obj minio.ObjectInfo) error {
		h, ok := b.keys.HandleOf(obj.Key)
		if !ok || h.Type != t {
			return nil
		}
		return fn(storage.FileInfo{Name: h.Name, Size: obj.Size, ModTime: obj.LastModified})
	}, func(err error) error { return b.errorf("list %s: %w", t, err) })
}

// listKeys calls fn for every object (every version, with versions)
// whose key starts with prefix. Errors of the store go through wrap; an
// error of fn is returned as it is.
func (b *Backend) listKeys(ctx context.Context, prefix string, versions bool, fn func(minio.ObjectInfo) error, wrap func(error) error) error {
	ctx, cancel := context.WithCancel(ctx)
	ch := b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: versions})
	defer func() {
		// Stop the lister and wait for it to end.
		cancel()
		for range ch {
		}
	}()
	for obj := range ch {
		if obj.Err != nil {
			if codeOf(obj.Err) == "NoSuchBucket" {
				return nil // an absent bucket holds nothing
			}
			return wrap(mapErr(obj.Err))
		}
		if err := fn(obj); err != nil {
			return err
		}
	}
	// The lister also ends when ctx ends.
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	return nil
}

// Remove deletes an object. On a versioned bucket it deletes every
// version of it by version ID, so that the space is freed, oldest first
// and the current version last, and only when all others are gone: if
// Object Lock refuses a deletion (ErrPermission), the object stays as it
// was. A missing object is not an error.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := h.Valid(); err != nil {
		return b.invalid("remove", err)
	}
	if err := b.removeKey(ctx, b.keys.Key(h)); err != nil {
		return b.errorf("remove %v: %w", h, err)
	}
	return nil
}

// removeKey deletes key, with all its versions on a versioned bucket.
func (b *Backend) removeKey(ctx context.Context, key string) error {
	if !b.versioned {
		err := mapErr(b.client.RemoveObject(ctx, b.cfg.Bucket, key, minio.RemoveObjectOptions{}))
		if errors.Is(err, storage.ErrNotExist) {
			return nil
		}
		return err
	}
	vs, err := b.versionsOf(ctx, key)
	if err != nil {
		return err
	}
	// vs is newest first.
	var errs []error
	for i := len(vs) - 1; i >= 0; i-- {
		if i == 0 && len(errs) > 0 {
			break // keep the current version: the object stays visible
		}
		err := mapErr(b.client.RemoveObject(ctx, b.cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: vs[i].VersionID}))
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			errs = append(errs, fmt.Errorf("version %s: %w", vs[i].VersionID, err))
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more versions not deleted)", errs[0], len(errs)-1)
}

// versionsOf lists the versions (and delete markers) of key, newest
// first.
func (b *Backend) versionsOf(ctx context.Context, key string) ([]minio.ObjectInfo, error) {
	var vs []minio.ObjectInfo
	err := b.listKeys(ctx, key, true, func(obj minio.ObjectInfo) error {
		if obj.Key == key {
			vs = append(vs, obj)
		}
		return nil
	}, func(err error) error { return fmt.Errorf("list versions: %w", err) })
	sortVersions(vs)
	return vs, err
}

// lockOf returns the retention of an object version from the headers
// of a HEAD or GET reply; a zero time if it has none (or the store does
// not say).
func lockOf(info minio.ObjectInfo) (minio.RetentionMode, time.Time) {
	mode := minio.RetentionMode(strings.ToUpper(info.Metadata.Get("X-Amz-Object-Lock-Mode")))
	until, err := time.Parse(time.RFC3339, info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"))
	if err != nil {
		return "", time.Time{}
	}
	return mode, until
}

// retentionOf returns the retention of the object version info (from a
// HEAD of key) describes; a zero time if it has none. AWS reports the
// retention in the HEAD reply already; other stores only answer a GET
// ?retention request.
func (b *Backend) retentionOf(ctx context.Context, key string, info minio.ObjectInfo) (minio.RetentionMode, time.Time, error) {
	if mode, until := lockOf(info); !until.IsZero() {
		return mode, until, nil
	}
	mode, until, err := b.client.GetObjectRetention(ctx, b.cfg.Bucket, key, info.VersionID)
	var resp minio.ErrorResponse
	switch {
	case err == nil && until != nil && mode != nil:
		return *mode, *until, nil
	case err == nil:
		return "", time.Time{}, nil
	case errors.As(err, &resp):
		if resp.StatusCode == http.StatusNotFound || resp.Code == "NoSuchObjectLockConfiguration" {
			return "", time.Time{}, nil // no retention
		}
		return "", time.Time{}, fmt.Errorf("get retention: %w", mapErr(err))
	}
	// A reply minio-go cannot read: versitygw names the root element
	// ObjectLockRetention, not Retention.
	return b.rawRetention(ctx, key, info.VersionID)
}

// rawRetention reads the retention of a version with a request of its
// own, accepting any name of the XML root element.
func (b *Backend) rawRetention(ctx context.Context, key, versionID string) (minio.RetentionMode, time.Time, error) {
	u := *b.client.EndpointURL()
	if b.cfg.BucketLookup == LookupDNS {
		u.Host = b.cfg.Bucket + "." + u.Host
		u.Path = "/" + key
	} else {
		u.Path = "/" + b.cfg.Bucket + "/" + key
	}
	q := url.Values{"retention": {""}}
	if versionID != "" {
		q.Set("versionId", versionID)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("get retention: %w", storage.Permanent(err))
	}
	creds, err := b.client.GetCreds()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("get retention: credentials: %w", err)
	}
	region := b.cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") // of ""
	req = signer.SignV4(*req, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, region)
	resp, err := b.http.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("get retention: %w", mapErr(err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("get retention: %w", mapErr(err))
	}
	if resp.StatusCode == http.StatusNotFound {
		return "", time.Time{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		var er minio.ErrorResponse
		_ = xml.Unmarshal(body, &er)
		er.StatusCode = resp.StatusCode
		return "", time.Time{}, fmt.Errorf("get retention: %w", mapErr(er))
	}
	var r struct {
		Mode            string `xml:"Mode"`
		RetainUntilDate string `xml:"RetainUntilDate"`
	}
	if err := xml.Unmarshal(body, &r); err != nil {
		return "", time.Time{}, fmt.Errorf("get retention: %w", mapErr(err))
	}
	if r.RetainUntilDate == "" {
		return "", time.Time{}, nil
	}
	until, err := time.Parse(time.RFC3339, r.RetainUntilDate)
	if err != nil {
		// time's message would quote the date again, unbounded.
		return "", time.Time{}, fmt.Errorf("get retention: retain-until date %q is not RFC 3339", objstore.CleanText(r.RetainUntilDate, 64))
	}
	return minio.RetentionMode(strings.ToUpper(r.Mode)), until, nil
}

// RetainedUntil returns the retain-until date of the current version of
// the object of h; zero when it has none.
func (b *Backend) RetainedUntil(ctx context.Context, h storage.Handle) (time.Time, error) {
	if err := h.Valid(); err != nil {
		return time.Time{}, b.invalid("retention", err)
	}
	if !b.features.ObjectLock {
		return time.Time{}, nil
	}
	_, _, until, err := b.currentRetention(ctx, h)
	if err != nil {
		return time.Time{}, b.errorf("retention of %v: %w", h, err)
	}
	return until, nil
}

// currentRetention returns the version ID and the retention of the
// current version of the object of h.
func (b *Backend) currentRetention(ctx context.Context, h storage.Handle) (versionID string, mode minio.RetentionMode, until time.Time, err error) {
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, b.keys.Key(h), minio.StatObjectOptions{ServerSideEncryption: b.readSSE()})
	if err != nil {
		return "", "", time.Time{}, mapErr(err)
	}
	mode, until, err = b.retentionOf(ctx, b.keys.Key(h), info)
	return info.VersionID, mode, until, err
}

// ExtendRetention sets the retention of the current version of the
// object of h to until, in mode (empty: compliance), unless it is already
// retained at least that long. A compliance lock stays a compliance lock.
func (b *Backend) ExtendRetention(ctx context.Context, h storage.Handle, mode storage.LockMode, until time.Time) error {
	if err := h.Valid(); err != nil {
		return b.invalid("extend retention", err)
	}
	m, err := retentionMode(mode)
	if err != nil {
		return b.errorf("extend retention of %v: %w", h, storage.Permanent(err))
	}
	if !b.features.ObjectLock {
		return b.errorf("extend retention of %v: %w", h, storage.Permanent(fmt.Errorf("bucket %s has no Object Lock", b.cfg.Bucket)))
	}
	versionID, curMode, curUntil, err := b.currentRetention(ctx, h)
	if err != nil {
		return b.errorf("extend retention of %v: %w", h, err)
	}
	if !curUntil.Before(until) {
		return nil
	}
	if curMode == minio.Compliance {
		m = minio.Compliance
	}
	until = until.UTC()
	err = b.client.PutObjectRetention(ctx, b.cfg.Bucket, b.keys.Key(h), minio.PutObjectRetentionOptions{
		Mode: &m, RetainUntilDate: &until, VersionID: versionID,
	})
	if err != nil {
		return b.errorf("extend retention of %v: %w", h, mapErr(err))
	}
	return nil
}
