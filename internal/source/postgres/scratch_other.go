//go:build !unix

package postgres

import (
	"context"
	"errors"
)

// Scratch is a throw-away PostgreSQL cluster for restore drills (Unix
// only).
type Scratch struct {
	Client *Client
}

// StartScratch is not supported here.
func StartScratch(ctx context.Context, binDir string) (*Scratch, error) {
	return nil, errors.New("database drills need a Unix system")
}

// Query is not supported here.
func (s *Scratch) Query(ctx context.Context, db, sql string) (string, error) {
	return "", errors.New("database drills need a Unix system")
}

// Stop does nothing here.
func (s *Scratch) Stop() {}
