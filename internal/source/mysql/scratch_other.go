//go:build !unix

package mysql

import (
	"context"
	"errors"
)

// Scratch is a throw-away server for restore drills (Unix only).
type Scratch struct {
	Source *Source
}

// StartScratch is not supported here.
func StartScratch(ctx context.Context, toolDir string) (*Scratch, error) {
	return nil, errors.New("database drills need a Unix system")
}

// Query is not supported here.
func (s *Scratch) Query(ctx context.Context, db, query string) (string, error) {
	return "", errors.New("database drills need a Unix system")
}

// Stop does nothing here.
func (s *Scratch) Stop() {}
