package storagetest_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestHostileServer(t *testing.T) {
	u := storagetest.HostileServer(t, http.StatusTeapot, http.Header{"X-Note": {"n"}}, "text/plain", "body")
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Note") != "n" ||
		resp.Header.Get("Content-Type") != "text/plain" || string(body) != "body" {
		t.Errorf("reply = %d %v %q, %v; want 418, X-Note, text/plain, body", resp.StatusCode, resp.Header, body, err)
	}
}

func TestRawServer(t *testing.T) {
	u := storagetest.RawServer(t, "HTTP/1.1 204 Raw\r\nConnection: close\r\n\r\n")
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.Status != "204 Raw" {
		t.Errorf("status = %q, want the raw reply's 204 Raw", resp.Status)
	}
}

// TestReads: Reads names the operations as CheckReadClass expects them.
func TestReads(t *testing.T) {
	errs := map[string]error{}
	storagetest.Reads(t.Context(), mem.New(), errs, " x")
	for _, op := range []string{"Stat x", "Load x", "Load range x"} {
		if err, ok := errs[op]; !ok || !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("errs[%q] = %v, %v; want ErrNotExist", op, err, ok)
		}
	}
	if err, ok := errs["List x"]; !ok || err != nil {
		t.Errorf(`errs["List x"] = %v, %v; want nil`, err, ok)
	}
	if len(errs) != 4 {
		t.Errorf("errs = %v, want 4 operations", errs)
	}
}
