package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
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
