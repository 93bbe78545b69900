package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/timespec"
)

// InitRequest creates a new, empty repository.
type InitRequest struct {
	Location, Password string
	// Compression and PackSize (bytes) as repository.Options takes them.
	Compression string
	PackSize    int
	// ObjectLock is "", "compliance" or "governance"; Retention how long
	// each object stays locked (timespec retention grammar, default 30d).
	ObjectLock, Retention string
	// CopyFrom, when set, is an existing repository whose chunker secret
	// and blob-ID key the new one shares (copies move only missing blobs).
	CopyFrom *Repo
}

// InitResult is the new repository.
type InitResult struct {
	ID, Location, Key string
}

// Init creates the repository req describes.
func (a *App) Init(ctx context.Context, req InitRequest) (*InitResult, error) {
	opts := repository.Options{KDF: a.KDF, Compression: req.Compression, PackSize: req.PackSize}
	var err error
	if opts.ObjectLock, err = req.lockConfig(); err != nil {
		return nil, err
	}
	if req.CopyFrom != nil {
		src, err := a.Open(ctx, *req.CopyFrom)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", req.CopyFrom.Location, err)
		}
		opts.CopyFrom = src
	}
	be, err := a.OpenBackend(ctx, req.Location, true, opts.ObjectLock != nil)
	if err != nil {
		return nil, err
	}
	r, err := repository.Init(ctx, be, req.Password, opts)
	if err != nil {
		return nil, err
	}
	a.Track(ctx, r)
	return &InitResult{ID: r.Config().ID, Location: be.Location(), Key: r.KeyName()}, nil
}

// Validate checks what can be checked before any password is asked for.
func (req InitRequest) Validate() error {
	_, err := req.lockConfig()
	return err
}

// lockConfig is the Object Lock configuration req asks for, nil for none.
func (req InitRequest) lockConfig() (*repository.LockConfig, error) {
	if req.ObjectLock == "" {
		if req.Retention != "" {
			return nil, errors.New("--retention needs --object-lock compliance|governance")
		}
		return nil, nil
	}
	if req.Retention == "" {
		req.Retention = "30d"
	}
	ret, err := timespec.ParseRetention(req.Retention)
	if err != nil {
		return nil, fmt.Errorf("--retention: %w", err)
	}
	lc := &repository.LockConfig{Mode: storage.LockMode(req.ObjectLock), Retention: ret}
	if err := lc.Validate(); err != nil {
		return nil, fmt.Errorf("--object-lock/--retention: %w", err)
	}
	return lc, nil
}
