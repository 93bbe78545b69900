package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// maxBlocks is the most blocks a block blob may have.
const maxBlocks = 50000

// Backend stores a repository in an Azure blob container. It is safe for
// concurrent use.
type Backend struct {
	cfg       Config
	location  string
	keys      objstore.Layout
	container *container.Client
	transport *http.Transport // owned; Close drops its idle connections

	blockSize   int64
	singleMax   int64
	concurrency int
}

var _ storage.Backend = (*Backend)(nil)

// Open returns the backend of the repository cfg names. A missing
// container or repository is not an error (the engine finds out when it
// reads the config); rejected credentials (storage.ErrAuth) and an
// unreachable service are.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	// Probe with the one read every use of the repository needs anyway,
	// so a credential that may only read and write blobs passes too.
	_, err = b.container.NewBlobClient(b.keys.Key(storage.Handle{Type: storage.ConfigFile})).GetProperties(ctx, nil)
	if err = mapErr(err, false); err != nil && !errors.Is(err, storage.ErrNotExist) && !errors.Is(err, storage.ErrPermission) {
		_ = b.Close()
		return nil, fmt.Errorf("%s: open: %w", b.location, err)
	}
	return b, nil
}

// Create returns the backend of a new repository, creating the container
// when it is missing. It fails wrapping storage.ErrExists when the prefix
// already holds a repository config.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	_, cerr := b.container.Create(ctx, nil)
	if cerr != nil && !hasCode(cerr, bloberror.ContainerAlreadyExists) {
		cerr = mapErr(cerr, false)
		// A credential limited to one container may not create it, but
		// the container may well be there: the config probe decides.
		if !errors.Is(cerr, storage.ErrPermission) {
			_ = b.Close()
			return nil, fmt.Errorf("%s: create container %s: %w", b.location, cfg.Container, cerr)
		}
	}
	h := storage.Handle{Type: storage.ConfigFile}
	_, err = b.container.NewBlobClient(b.keys.Key(h)).GetProperties(ctx, nil)
	err = mapErr(err, false)
	switch {
	case err == nil:
		_ = b.Close()
		return nil, fmt.Errorf("%s: create: %v: %w", b.location, h, storage.ErrExists)
	case errors.Is(err, storage.ErrNotExist) && cerr != nil && hasCode(err, bloberror.ContainerNotFound):
		_ = b.Close()
		return nil, fmt.Errorf("%s: create container %s: %w", b.location, cfg.Container, cerr)
	case errors.Is(err, storage.ErrNotExist):
		return b, nil
	default:
		_ = b.Close()
		return nil, fmt.Errorf("%s: create: stat %v: %w", b.location, h, err)
	}
}

// newBackend builds the client of cfg without contacting the service.
func newBackend(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, storage.Permanent(err)
	}
	b := &Backend{
		cfg:         cfg,
		location:    cfg.location(),
		keys:        objstore.NewLayout(cfg.Prefix),
		blockSize:   cfg.BlockSize,
		singleMax:   cfg.SingleUploadMax,
		concurrency: cfg.UploadConcurrency,
	}
	if b.blockSize == 0 {
		b.blockSize = DefaultBlockSize
	}
	if b.singleMax == 0 {
		b.singleMax = DefaultSingleUploadMax
	}
	if b.concurrency == 0 {
		b.concurrency = DefaultUploadConcurrency
	}
	retries, delay := cfg.MaxRetries, cfg.RetryDelay
	if retries == 0 {
		retries = DefaultMaxRetries
	}
	if delay == 0 {
		delay = 200 * time.Millisecond
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.Dial != nil {
		tr.DialContext, tr.Proxy = cfg.Dial, nil
	}
	b.transport = tr
	opts := &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: &http.Client{Transport: tr},
		Retry: policy.RetryOptions{
			MaxRetries:    retries,
			RetryDelay:    delay,
			MaxRetryDelay: 2 * time.Second,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "bunker"},
	}}
	var (
		client *azblob.Client
		err    error
	)
	switch {
	case cfg.ConnectionString != "":
		client, err = azblob.NewClientFromConnectionString(cfg.ConnectionString, opts)
		if err != nil {
			// The SDK's message may quote the connection string.
			err = errors.New("cannot parse AZURE_STORAGE_CONNECTION_STRING")
		}
	case cfg.Key != "":
		var cred *azblob.SharedKeyCredential
		cred, err = azblob.NewSharedKeyCredential(cfg.Account, cfg.Key)
		if err == nil {
			client, err = azblob.NewClientWithSharedKeyCredential(cfg.Endpoint, cred, opts)
		}
	default:
		u := strings.TrimSuffix(cfg.Endpoint, "/") + "/?" + cfg.SASToken
		client, err = azblob.NewClientWithNoCredential(u, opts)
	}
	if err != nil {
		tr.CloseIdleConnections()
		return nil, storage.Permanent(fmt.Errorf("%s: %w", b.location, err))
	}
	b.container = client.ServiceClient().NewContainerClient(cfg.Container)
	return b, nil
}

// Location returns "azure:container:/prefix" as the user gave it.
func (b *Backend) Location() string { return b.location }

// Features reports atomic conditional create (If-None-Match: *).
func (b *Backend) Features() storage.Features {
	return storage.Features{ConditionalCreate: true}
}

// Close releases the idle connections of the backend.
func (b *Backend) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// errorf builds the error of an operation on an object:
// "<location>: <op> <handle>: <err>".
func (b *Backend) errorf(op string, h storage.Handle, err error) error {
	return fmt.Errorf("%s: %s %v: %w", b.location, op, h, err)
}

// Save uploads data as the blob of h: in one request up to
// Config.SingleUploadMax, above that as blocks committed by one final
// request. Either way the blob appears whole or not at all. With
// opts.IfNotExists the upload (or the commit) carries If-None-Match: *,
// which fails with storage.ErrExists when the blob exists. Packs get
// Config.AccessTierPacks. opts.RetainUntil is ignored (see the package
// documentation).
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := h.Valid(); err != nil {
		return storage.Permanent(fmt.Errorf("%s: save: %w", b.location, err))
	}
	if err := ctx.Err(); err != nil {
		return b.errorf("save", h, err)
	}
	var access *blob.AccessConditions
	if opts.IfNotExists {
		access = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)}}
	}
	var tier *blob.AccessTier
	if h.Type == storage.PackFile && !opts.Metadata && b.cfg.AccessTierPacks != "" {
		tier = to(b.cfg.AccessTierPacks)
	}
	bb := b.container.NewBlockBlobClient(b.keys.Key(h))
	var err error
	if int64(len(data)) <= b.singleMax {
		sum := md5.Sum(data)
		_, err = bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
			AccessConditions:        access,
			Tier:                    tier,
			TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
		})
	} else {
		err = b.uploadBlocks(ctx, bb, data, &blockblob.CommitBlockListOptions{
			AccessConditions: access,
			Tier:             tier,
		})
	}
	if err != nil {
		return b.errorf("save", h, mapErr(err, opts.IfNotExists))
	}
	return nil
}

// uploadBlocks stages data in blocks, a few at a time, and commits them.
// Until the commit the blob is unchanged; staged blocks that are never
// committed are dropped by the service after a week.
func (b *Backend) uploadBlocks(ctx context.Context, bb *blockblob.Client, data []byte, commit *blockblob.CommitBlockListOptions) error {
	size := int64(len(data))
	bs := b.blockSize
	if size > bs*maxBlocks {
		bs = (size + maxBlocks - 1) / maxBlocks
	}
	n := int((size + bs - 1) / bs)
	// Block IDs must have one length within a blob; a random tag keeps
	// the blocks of concurrent writers of one name apart.
	var tag [12]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return err
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", hex.EncodeToString(tag[:]), i))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, b.concurrency)
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
stage:
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break stage
		}
		wg.Go(func() {
			defer func() { <-sem }()
			chunk := data[int64(i)*bs : min(int64(i+1)*bs, size)]
			sum := md5.Sum(chunk)
			_, err := bb.StageBlock(ctx, ids[i], streaming.NopCloser(bytes.NewReader(chunk)), &blockblob.StageBlockOptions{
				TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
			})
			if err != nil {
				fail(fmt.Errorf("stage block %d of %d: %w", i+1, n, err))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := bb.CommitBlockList(ctx, ids, commit)
	return err
}

// Load calls fn with a reader of length bytes of the blob from offset
// (length 0: to the end), streamed from one ranged request. A range past
// the end of the blob is a permanent error.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return storage.Permanent(fmt.Errorf("%s: load: %w", b.location, err))
	}
	if err := ctx.Err(); err != nil {
		return b.errorf("load", h, err)
	}
	if length < 0 || offset < 0 {
		return storage.Permanent(b.errorf("load", h, fmt.Errorf("invalid range: offset %d, length %d", offset, length)))
	}
	resp, err := b.container.NewBlobClient(b.keys.Key(h)).DownloadStream(ctx, &blob.DownloadStreamOptions{
		Range: blob.HTTPRange{Offset: offset, Count: int64(length)},
	})
	if hasCode(err, bloberror.InvalidRange) {
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
	if err != nil {
		return b.errorf("load", h, mapErr(err, false))
	}
	defer func() { _ = resp.Body.Close() }()
	if length > 0 && (resp.ContentLength == nil || *resp.ContentLength != int64(length)) {
		// The service returns what there is of a range that runs past
		// the end.
		got := int64(-1)
		if resp.ContentLength != nil {
			got = *resp.ContentLength
		}
		return storage.Permanent(b.errorf("load", h, fmt.Errorf("range offset %d, length %d is past the end of the object (got %d bytes)", offset, length, got)))
	}
	rd := &objstore.ReplyReader{R: resp.Body}
	if err := fn(rd); err != nil {
		if rd.Err == nil {
			return b.errorf("load", h, err) // fn's own error
		}
		return b.errorf("load", h, mapErr(err, false))
	}
	return nil
}

// Stat returns the size and modification time of a blob.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return storage.FileInfo{}, storage.Permanent(fmt.Errorf("%s: stat: %w", b.location, err))
	}
	if err := ctx.Err(); err != nil {
		return storage.FileInfo{}, b.errorf("stat", h, err)
	}
	resp, err := b.container.NewBlobClient(b.keys.Key(h)).GetProperties(ctx, nil)
	if err != nil {
		return storage.FileInfo{}, b.errorf("stat", h, mapErr(err, false))
	}
	fi := storage.FileInfo{Name: h.Name}
	if resp.ContentLength != nil {
		fi.Size = *resp.ContentLength
	}
	if resp.LastModified != nil {
		fi.ModTime = *resp.LastModified
	}
	return fi, nil
}

// List calls fn for every blob of type t. Blobs whose names are not valid
// object names, and packs outside their shard (which Load could not
// find), are skipped. An error from fn stops the listing and is returned
// as it is.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: list %s: %w", b.location, t, err)
	}
	prefix, ok := b.keys.ListPrefix(t)
	if !ok {
		return storage.Permanent(fmt.Errorf("%s: list %q: unknown file type", b.location, t))
	}
	pager := b.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if hasCode(err, bloberror.ContainerNotFound) {
				return nil
			}
			return fmt.Errorf("%s: list %s: %w", b.location, t, mapErr(err, false))
		}
		if page.Segment == nil {
			// A 200 reply without the list: not the blob service's.
			return fmt.Errorf("%s: list %s: %w", b.location, t, errNoSegment)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || item.Properties == nil || item.Deleted != nil && *item.Deleted {
				continue
			}
			h, ok := b.keys.HandleOf(*item.Name)
			if !ok || h.Type != t {
				continue
			}
			fi := storage.FileInfo{Name: h.Name}
			if item.Properties.ContentLength != nil {
				fi.Size = *item.Properties.ContentLength
			}
			if item.Properties.LastModified != nil {
				fi.ModTime = *item.Properties.LastModified
			}
			if err := fn(fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove deletes a blob; a missing blob (or container) is not an error.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := h.Valid(); err != nil {
		return storage.Permanent(fmt.Errorf("%s: remove: %w", b.location, err))
	}
	if err := ctx.Err(); err != nil {
		return b.errorf("remove", h, err)
	}
	_, err := b.container.NewBlobClient(b.keys.Key(h)).Delete(ctx, nil)
	err = mapErr(err, false)
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return b.errorf("remove", h, err)
	}
	return nil
}

// errNoSegment: a listing reply without a blob list.
var errNoSegment = errors.New("the listing reply holds no blob list (is the endpoint Azure Blob Storage?)")

func to[T any](v T) *T { return &v }
