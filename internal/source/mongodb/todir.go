package mongodb

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/bunkerbackup/bunker/internal/safefs"
	"github.com/bunkerbackup/bunker/internal/source"
)

// RestoreToDir writes the files of the backup, mongodump's layout, into
// dir (created if needed; it must not hold them already). Names come from
// the snapshot and links may already be in dir, so everything is created
// beneath dir through safefs: a link in the way (dir/shop -> /etc) is
// refused by name and nothing is written through it; dir itself is the
// user's choice and may be a link.
func RestoreToDir(ctx context.Context, t source.Tree, dir string) (files int, bytes int64, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	root, err := safefs.Open(dir)
	if err != nil {
		return 0, 0, err
	}
	defer root.Close()
	// walk copies the backup's directory rel into the directory local
	// beneath root ("" is root itself).
	var walk func(rel, local string) error
	walk = func(rel, local string) error {
		entries, err := t.List(ctx, rel)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\\\x00") {
				return fmt.Errorf("%s: invalid name %q in the backup", rel, e.Name)
			}
			src, dst := rel+"/"+e.Name, path.Join(local, e.Name)
			switch e.Type {
			case source.TypeDir:
				if err := root.MkdirAll(dst, 0o700); err != nil {
					return err
				}
				if err := walk(src, dst); err != nil {
					return err
				}
			case source.TypeFile:
				n, err := copyOut(ctx, t, src, root, dst)
				if err != nil {
					return err
				}
				files++
				bytes += n
			}
		}
		return nil
	}
	if err := walk(Root, ""); err != nil {
		return files, bytes, fmt.Errorf("restore to %s: %w", dir, err)
	}
	return files, bytes, nil
}

// copyOut writes the file src of the backup to dst beneath root, which
// must not exist; a file it could not finish is removed.
func copyOut(ctx context.Context, t source.Tree, src string, root *safefs.Root, dst string) (int64, error) {
	rc, err := t.Open(ctx, src)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	f, err := root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(dst)
		return n, fmt.Errorf("%s: %w", root.Join(dst), err)
	}
	return n, nil
}
