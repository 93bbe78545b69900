//go:build unix

package local

import (
	"errors"
	"io/fs"
	"syscall"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
)

func TestMapErr(t *testing.T) {
	tests := []struct {
		errno syscall.Errno
		want  error // nil: no sentinel
	}{
		{syscall.ENOENT, storage.ErrNotExist},
		{syscall.EEXIST, storage.ErrExists},
		{syscall.ENOSPC, storage.ErrNoSpace},
		{syscall.EDQUOT, storage.ErrNoSpace},
		{syscall.EACCES, storage.ErrPermission},
		{syscall.EPERM, storage.ErrPermission},
		{syscall.EROFS, storage.ErrPermission},
		{syscall.EIO, nil},
	}
	sentinels := []error{storage.ErrNotExist, storage.ErrExists, storage.ErrNoSpace, storage.ErrPermission}
	for _, tc := range tests {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			orig := &fs.PathError{Op: "write", Path: "/repo/packs/ab/.tmp-ab12-1", Err: tc.errno}
			err := mapErr(orig)
			if err.Error() != orig.Error() {
				t.Errorf("message %q, want the OS one %q", err, orig)
			}
			if !errors.Is(err, tc.errno) {
				t.Errorf("mapped error lost the errno")
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tc.want; got != want {
					t.Errorf("errors.Is(%v) = %v, want %v", s, got, want)
				}
			}
		})
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}
