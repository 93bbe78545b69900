package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// sortVersions orders the versions of one key newest first: by
// LastModified, keeping the store's order (newest first) among versions
// written in the same second.
func sortVersions(vs []minio.ObjectInfo) {
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].LastModified.After(vs[j].LastModified) })
}

// versionAt returns the version of an object (versions newest first) at
// t: the newest written at or before t. It reports false when the object
// did not exist at t (no version yet, or a delete marker).
func versionAt(vs []minio.ObjectInfo, t time.Time) (minio.ObjectInfo, bool) {
	for _, v := range vs {
		if !v.LastModified.After(t) {
			return v, !v.IsDeleteMarker
		}
	}
	return minio.ObjectInfo{}, false
}

// current returns the current version of an object (versions newest
// first).
func current(vs []minio.ObjectInfo) minio.ObjectInfo {
	for _, v := range vs {
		if v.IsLatest {
			return v
		}
	}
	return vs[0]
}

// changed reports whether the current version of an object differs from
// an earlier one. A copy of a version (as RollBack makes) has another
// version ID but, on S3, the same ETag as long as it was written in one
// PUT: an equal ETag and size count as the same content.
func changed(cur, old minio.ObjectInfo) bool {
	switch {
	case cur.IsDeleteMarker:
		return true
	case cur.VersionID == old.VersionID:
		return false
	}
	return cur.ETag == "" || cur.ETag != old.ETag || cur.Size != old.Size
}

// allVersions lists the versions of every object of the repository,
// newest first, by handle.
func (b *Backend) allVersions(ctx context.Context, op string) (map[storage.Handle][]minio.ObjectInfo, error) {
	all := make(map[storage.Handle][]minio.ObjectInfo)
	err := b.listKeys(ctx, b.keys.Root(), true, func(obj minio.ObjectInfo) error {
		if h, ok := b.keys.HandleOf(obj.Key); ok {
			all[h] = append(all[h], obj)
		}
		return nil
	}, func(err error) error { return b.errorf("%s: list versions: %w", op, err) })
	if err != nil {
		return nil, err
	}
	for _, vs := range all {
		sortVersions(vs)
	}
	return all, nil
}

// checkVersioned fails unless the bucket keeps versions.
func (b *Backend) checkVersioned(op string) error {
	if !b.versioned {
		return b.errorf("%s: %w", op, storage.Permanent(fmt.Errorf("bucket %s is not versioned: it keeps no old versions", b.cfg.Bucket)))
	}
	return nil
}

// AsOf returns a read-only view of the repository as it was at t: for
// every object the newest version written at or before t (by the store's
// LastModified, which has a resolution of one second on many stores).
// It lists every version once, when it is called; later writes are not
// seen. It fails on a bucket without versioning.
func (b *Backend) AsOf(ctx context.Context, t time.Time) (storage.Backend, error) {
	op := "as of " + t.UTC().Format(time.RFC3339)
	if err := b.checkVersioned(op); err != nil {
		return nil, err
	}
	all, err := b.allVersions(ctx, op)
	if err != nil {
		return nil, err
	}
	v := &view{b: b, op: op, objs: make(map[storage.Handle]minio.ObjectInfo)}
	for h, vs := range all {
		if at, ok := versionAt(vs, t); ok {
			v.objs[h] = at
		}
	}
	return v, nil
}

// RollBack makes the current state of the repository equal its state at
// t. An object whose current version is not its version at t (and has
// another ETag or size) gets that version back as a new current version (a server-side copy, which keeps
// the retention the old version has left, if any); an object that did not
// exist at t is deleted with a plain delete, which on a versioned bucket
// only adds a delete marker. Older versions are kept. report is called
// with "restored" or "removed" for every object changed. It fails on a
// bucket without versioning.
func (b *Backend) RollBack(ctx context.Context, t time.Time, report func(h storage.Handle, action string)) error {
	op := "roll back to " + t.UTC().Format(time.RFC3339)
	if err := b.checkVersioned(op); err != nil {
		return err
	}
	all, err := b.allVersions(ctx, op)
	if err != nil {
		return err
	}
	hs := make([]storage.Handle, 0, len(all))
	for h := range all {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].String() < hs[j].String() })
	for _, h := range hs {
		vs := all[h]
		cur := current(vs)
		at, existed := versionAt(vs, t)
		switch {
		case !existed && cur.IsDeleteMarker:
			continue
		case !existed:
			err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.keys.Key(h), minio.RemoveObjectOptions{})
			if err != nil {
				return b.errorf("%s: remove %v: %w", op, h, mapErr(err))
			}
			if report != nil {
				report(h, "removed")
			}
		case !changed(cur, at):
			continue
		default:
			if err := b.restore(ctx, h, at); err != nil {
				return b.errorf("%s: restore %v (version %s): %w", op, h, at.VersionID, err)
			}
			if report != nil {
				report(h, "restored")
			}
		}
	}
	return nil
}

// restore copies version v of the object of h over it, as its new
// current version.
func (b *Backend) restore(ctx context.Context, h storage.Handle, v minio.ObjectInfo) error {
	key := b.keys.Key(h)
	src := minio.CopySrcOptions{Bucket: b.cfg.Bucket, Object: key, VersionID: v.VersionID}
	dst := minio.CopyDestOptions{Bucket: b.cfg.Bucket, Object: key, Encryption: b.sse}
	if b.sse != nil && b.sse.Type() == encrypt.SSEC {
		src.Encryption = encrypt.SSECopy(b.sse)
	}
	// With storage classes configured, the copy keeps the class the
	// version had (a pack of trees stays in the metadata class), or gets
	// that of its type when the listing does not say.
	sc := b.storageClass(h.Type, false)
	if sc != "" && v.StorageClass != "" {
		sc = v.StorageClass
	}
	if sc != "" {
		dst.ReplaceMetadata = true
		dst.ContentType = "application/octet-stream"
		dst.UserMetadata = map[string]string{"X-Amz-Storage-Class": sc}
	}
	if b.features.ObjectLock {
		// A copy is a new version: it gets the retention the old version
		// still has (the bucket's default retention applies otherwise).
		info, err := b.client.StatObject(ctx, b.cfg.Bucket, key, minio.StatObjectOptions{VersionID: v.VersionID, ServerSideEncryption: b.readSSE()})
		if err != nil {
			return fmt.Errorf("stat: %w", mapErr(err))
		}
		mode, until, err := b.retentionOf(ctx, key, info)
		if err != nil {
			return err
		}
		if until.After(time.Now()) && mode != "" {
			dst.Mode, dst.RetainUntilDate = mode, until
		}
	}
	if _, err := b.client.CopyObject(ctx, dst, src); err != nil {
		return fmt.Errorf("copy: %w", mapErr(err))
	}
	return nil
}

// view is the read-only Backend AsOf returns.
type view struct {
	b    *Backend
	op   string // "as of <time>", for messages
	objs map[storage.Handle]minio.ObjectInfo
}

var errReadOnly = errors.New("a view of the past is read-only")

func (v *view) errorf(format string, args ...any) error {
	return v.b.errorf(v.op+": "+format, args...)
}

// Location is the location of the backend.
func (v *view) Location() string { return v.b.Location() }

// Features are none: the view cannot be written.
func (v *view) Features() storage.Features { return storage.Features{} }

// Close does nothing; the backend stays open.
func (v *view) Close() error { return nil }

// Save fails with storage.ErrPermission.
func (v *view) Save(_ context.Context, h storage.Handle, _ []byte, _ storage.SaveOptions) error {
	return v.errorf("save %v: %w: %w", h, errReadOnly, storage.ErrPermission)
}

// Remove fails with storage.ErrPermission.
func (v *view) Remove(_ context.Context, h storage.Handle) error {
	return v.errorf("remove %v: %w: %w", h, errReadOnly, storage.ErrPermission)
}

func (v *view) version(op string, h storage.Handle) (minio.ObjectInfo, error) {
	if err := h.Valid(); err != nil {
		return minio.ObjectInfo{}, v.errorf("%s: %w", op, storage.Permanent(err))
	}
	info, ok := v.objs[h]
	if !ok {
		return minio.ObjectInfo{}, v.errorf("%s %v: %w", op, h, storage.ErrNotExist)
	}
	return info, nil
}

// Load reads the version of the object at the view's time.
func (v *view) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	info, err := v.version("load", h)
	if err != nil {
		return err
	}
	return v.b.load(ctx, h, info.VersionID, length, offset, fn)
}

// Stat describes the version of the object at the view's time.
func (v *view) Stat(_ context.Context, h storage.Handle) (storage.FileInfo, error) {
	info, err := v.version("stat", h)
	if err != nil {
		return storage.FileInfo{}, err
	}
	return storage.FileInfo{Name: h.Name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List lists the objects of type t that existed at the view's time.
func (v *view) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	switch t {
	case storage.ConfigFile, storage.PackFile, storage.KeyFile, storage.IndexFile, storage.SnapshotFile, storage.SessionFile, storage.MaintFile:
	default:
		return v.errorf("list %q: %w", t, storage.Permanent(errors.New("unknown file type")))
	}
	for h, info := range v.objs {
		if err := ctx.Err(); err != nil {
			return v.errorf("list %s: %w", t, err)
		}
		if h.Type != t {
			continue
		}
		if err := fn(storage.FileInfo{Name: h.Name, Size: info.Size, ModTime: info.LastModified}); err != nil {
			return err
		}
	}
	return nil
}
