package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOutputStreamsEverything(t *testing.T) {
	c := &Command{Path: "/bin/sh", Args: []string{"-c", "head -c 50000000 /dev/zero | tr '\\0' x"}}
	var n int64
	h := sha256.New()
	err := c.Output(context.Background(), func(r io.Reader) error {
		var err error
		n, err = io.Copy(h, r)
		return err
	})
	if err != nil || n != 50_000_000 {
		t.Fatalf("n %d, err %v", n, err)
	}
	want := sha256.Sum256(bytes.Repeat([]byte("x"), 50_000_000))
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("content differs")
	}
}

func TestOutputToolFails(t *testing.T) {
	c := &Command{Path: "/bin/sh", Args: []string{"-c", "echo partial; echo 'pg_dump: error: connection lost' >&2; exit 1"}}
	err := c.Output(context.Background(), func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	var te *ToolError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "connection lost") || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestOutputConsumerFailsKillsTool(t *testing.T) {
	c := &Command{Path: "/bin/sh", Args: []string{"-c", "yes; sleep 60"}}
	boom := errors.New("repository full")
	start := time.Now()
	err := c.Output(context.Background(), func(r io.Reader) error {
		_, _ = io.CopyN(io.Discard, r, 1<<20)
		return boom
	})
	if !errors.Is(err, boom) || time.Since(start) > 20*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestOutputMissingTool(t *testing.T) {
	c := &Command{Path: "no-such-dump-tool-here"}
	err := c.Output(context.Background(), func(r io.Reader) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
}

func TestLookTool(t *testing.T) {
	root := t.TempDir()
	exe := func(p string) string {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v9 := exe("pg/9/bin/pg_dump")
	v16 := exe("pg/16/bin/pg_dump")
	v15 := exe("pg/15/bin/pg_dump")
	exe("pg/16/bin/other")
	only15 := exe("pg/15/bin/initdb")
	if err := os.WriteFile(filepath.Join(root, "pg/16/bin/initdb"), nil, 0o644); err != nil { // not executable
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "pg/17/bin/initdb"), 0o755); err != nil { // a directory
		t.Fatal(err)
	}
	glob := filepath.Join(root, "pg/*/bin")
	for _, c := range []struct {
		name, dir string
		search    []string
		want      string
		err       string
	}{
		{name: "pg_dump", search: []string{glob}, want: v16},
		{name: "initdb", search: []string{glob}, want: only15},
		{name: "pg_dump", dir: filepath.Join(root, "pg/9/bin"), search: []string{glob}, want: v9},
		{name: "pg_dump", search: []string{filepath.Join(root, "pg/15/bin"), glob}, want: v15},
		{name: "pg_dump", search: []string{filepath.Join(root, "nowhere"), glob}, want: v16},
		{name: "other", dir: filepath.Join(root, "pg/15/bin"), err: "other not found in " + filepath.Join(root, "pg/15/bin")},
		{name: "no-such-tool-anywhere", search: []string{glob}, err: "no-such-tool-anywhere not found on PATH"},
	} {
		got, err := LookTool(c.name, c.dir, c.search...)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("LookTool(%s, %q, %q) = %q, %v; want error %q", c.name, c.dir, c.search, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("LookTool(%s, %q, %q) = %q, %v; want %q", c.name, c.dir, c.search, got, err, c.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"/usr/lib/postgresql/9/bin", "/usr/lib/postgresql/16/bin", -1},
		{"/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/16/bin", 0},
		{"/opt/pg-9.6/bin", "/opt/pg-10.1/bin", -1},
		{"/opt/pg-10.1/bin", "/opt/pg-10.01/bin", 0},
		{"/opt/a", "/opt/b", -1},
		{"/opt/a1", "/opt/a", 1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := compareVersions(c.b, c.a); got != -c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}
