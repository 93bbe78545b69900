package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// LockConfig is the Object Lock setting of a repository: every object that
// holds data (packs, index files, snapshots, keys, the config) is written
// with a retain-until date Retention after its writing, in Mode.
// Sessions and maintenance objects, which are removed in normal operation,
// are not locked.
type LockConfig struct {
	Mode      storage.LockMode `json:"mode"`
	Retention time.Duration    `json:"retention"`
}

// Validate checks the mode and the retention.
func (l *LockConfig) Validate() error {
	switch l.Mode {
	case storage.LockCompliance, storage.LockGovernance:
	default:
		return fmt.Errorf("object lock mode %q: want compliance or governance", l.Mode)
	}
	if l.Retention < time.Second || l.Retention > 100*365*24*time.Hour {
		return fmt.Errorf("object lock retention %v: want between 1 second and 100 years", l.Retention)
	}
	return nil
}

// locked reports whether objects of type t are written locked.
func locked(t storage.FileType) bool {
	return t != storage.SessionFile && t != storage.MaintFile
}

// lockingBackend gives every Save of a lockable object its retain-until
// date.
type lockingBackend struct {
	storage.Backend
	cfg LockConfig
	now func() time.Time
}

func (b *lockingBackend) Unwrap() storage.Backend { return b.Backend }

func (b *lockingBackend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if locked(h.Type) && opts.RetainUntil.IsZero() {
		opts.RetainUntil = b.now().Add(b.cfg.Retention).UTC()
		opts.RetainMode = b.cfg.Mode
	}
	return b.Backend.Save(ctx, h, data, opts)
}

// Lock returns the repository's Object Lock setting, nil without one.
func (r *Repository) Lock() *LockConfig { return r.cfg.ObjectLock }

// RetainedUntil returns until when the store refuses to delete the object
// h: zero when the repository has no object lock or objects of h's type
// are not locked.
func (r *Repository) RetainedUntil(ctx context.Context, h storage.Handle) (time.Time, error) {
	if r.cfg.ObjectLock == nil || !locked(h.Type) {
		return time.Time{}, nil
	}
	ret, ok := storage.Find[storage.Retainer](r.be)
	if !ok {
		return time.Time{}, fmt.Errorf("%s: the store cannot report object retention", r.be.Location())
	}
	return ret.RetainedUntil(ctx, h)
}

// retentionLedger records the last retention extension: every object
// still needed then is retained at least until Until.
type retentionLedger struct {
	Extended time.Time `json:"extended"`
	Until    time.Time `json:"until"`
}

const ledgerName = "retention"

// ExtensionDue reports whether the retention of the objects still needed
// should be extended at now: when the last extension (or, without one,
// the repository's creation) leaves less than half the retention period.
func (r *Repository) ExtensionDue(ctx context.Context, now time.Time) (bool, error) {
	lc := r.cfg.ObjectLock
	if lc == nil {
		return false, nil
	}
	var l retentionLedger
	err := r.LoadJSON(ctx, storage.MaintFile, ledgerName, &l)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		l.Until = r.cfg.Created.Add(lc.Retention)
	case err != nil && IsDecodeError(err):
		// Damaged or planted: extending again is the safe side.
		r.log.Warn("unreadable retention ledger; extending retention now", "object", "maint/"+ledgerName, "err", err)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("load retention ledger: %w", err)
	}
	if l.Until.After(now.Add(lc.Retention)) {
		// No extension reaches that far: the ledger lies.
		r.log.Warn("retention ledger claims an extension beyond the retention period; extending retention now", "until", l.Until)
		return true, nil
	}
	return l.Until.Sub(now) < lc.Retention/2, nil
}

// ExtendRetention extends the retention of the objects in keep to now
// plus the retention period, and records that in the ledger.
func (r *Repository) ExtendRetention(ctx context.Context, keep []storage.Handle, now time.Time, progress func(done, total int)) error {
	lc := r.cfg.ObjectLock
	if lc == nil {
		return nil
	}
	ret, ok := storage.Find[storage.Retainer](r.be)
	if !ok {
		return fmt.Errorf("%s: the store cannot extend object retention", r.be.Location())
	}
	until := now.Add(lc.Retention).UTC()
	for i, h := range keep {
		if !locked(h.Type) {
			continue
		}
		if err := ret.ExtendRetention(ctx, h, lc.Mode, until); err != nil && !errors.Is(err, storage.ErrNotExist) {
			return fmt.Errorf("extend retention of %s: %w", h, err)
		}
		if progress != nil {
			progress(i+1, len(keep))
		}
	}
	return r.SaveJSONNamed(ctx, storage.MaintFile, ledgerName, retentionLedger{Extended: now.UTC(), Until: until}, storage.SaveOptions{})
}
