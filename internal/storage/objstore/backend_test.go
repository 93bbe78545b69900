package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
)

func TestListConfig(t *testing.T) {
	fi := storage.FileInfo{Size: 7}
	boom := errors.New("boom")
	tests := []struct {
		name    string
		statErr error
		want    int // calls of fn
		wantErr error
	}{
		{"exists", nil, 1, nil},
		{"missing", fmt.Errorf("stat: %w", storage.ErrNotExist), 0, nil},
		{"stat fails", boom, 0, boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stat := func(_ context.Context, h storage.Handle) (storage.FileInfo, error) {
				if h != (storage.Handle{Type: storage.ConfigFile}) {
					t.Errorf("stat(%v), want the config", h)
				}
				return fi, tc.statErr
			}
			n := 0
			err := ListConfig(t.Context(), stat, func(got storage.FileInfo) error {
				n++
				if got != fi {
					t.Errorf("fn(%v), want %v", got, fi)
				}
				return nil
			})
			if n != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("ListConfig: fn called %d times, %v; want %d, %v", n, err, tc.want, tc.wantErr)
			}
		})
	}
	// An error of fn is returned as it is.
	stat := func(context.Context, storage.Handle) (storage.FileInfo, error) { return fi, nil }
	if err := ListConfig(t.Context(), stat, func(storage.FileInfo) error { return boom }); err != boom {
		t.Errorf("ListConfig with a failing fn = %v, want %v", err, boom)
	}
}

func TestLoadAtEnd(t *testing.T) {
	read := func(rd io.Reader) error {
		b, err := io.ReadAll(rd)
		if err == nil && len(b) != 0 {
			err = fmt.Errorf("read %d bytes, want none", len(b))
		}
		return err
	}
	if err := LoadAtEnd(10, 0, 10, read); err != nil {
		t.Errorf("LoadAtEnd(size 10, length 0, offset 10) = %v, want nil", err)
	}
	if err := LoadAtEnd(0, 0, 0, read); err != nil {
		t.Errorf("LoadAtEnd of an empty object = %v, want nil", err)
	}
	boom := errors.New("boom")
	if err := LoadAtEnd(10, 0, 10, func(io.Reader) error { return boom }); err != boom {
		t.Errorf("LoadAtEnd with a failing fn = %v, want %v", err, boom)
	}
	for _, r := range [][2]int64{{1, 10}, {0, 11}, {5, 12}} {
		called := false
		err := LoadAtEnd(10, int(r[0]), r[1], func(io.Reader) error { called = true; return nil })
		if err == nil || !storage.IsPermanent(err) || called || !strings.Contains(err.Error(), "past the end of the 10-byte object") {
			t.Errorf("LoadAtEnd(size 10, length %d, offset %d) = %v (fn called: %v), want a permanent past-the-end error", r[0], r[1], err, called)
		}
	}
}
