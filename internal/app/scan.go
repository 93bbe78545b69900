package app

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync/atomic"

	"github.com/bunkerbackup/bunker/internal/exclude"
)

// scanner counts what a backup will visit, in parallel with the backup,
// so progress can show a percentage and an ETA (as restic does).
type scanner struct {
	files, bytes atomic.Int64
	done         atomic.Bool
}

func startScan(ctx context.Context, paths []string, m *exclude.Matcher) *scanner {
	s := &scanner{}
	go func() {
		defer s.done.Store(true)
		for _, root := range paths {
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					return nil
				}
				if m != nil && p != root && m.Excluded(p, d.IsDir()) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				if d.Type().IsRegular() {
					if fi, err := d.Info(); err == nil {
						s.files.Add(1)
						s.bytes.Add(fi.Size())
					}
				}
				return nil
			})
		}
	}()
	return s
}
