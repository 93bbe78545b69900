package gcs

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// scripted starts a server that answers each request with handle, and
// returns a backend that talks to it as to an emulator.
func scripted(t *testing.T, attempts int, handle http.HandlerFunc) *Backend {
	t.Helper()
	srv := httptest.NewServer(handle)
	t.Cleanup(srv.Close)
	be, err := newBackend(t.Context(), Config{Bucket: "bkt", Prefix: "repo", EmulatorHost: srv.URL,
		MaxAttempts: attempts, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

var keyK = storage.Handle{Type: storage.KeyFile, Name: "k"}

// TestRetries: idempotent requests are tried Config.MaxAttempts times
// after transient failures, a delete and an unconditional upload once.
func TestRetries(t *testing.T) {
	for _, attempts := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(attempts), func(t *testing.T) {
			var mu sync.Mutex
			hits := map[string]int{}
			be := scripted(t, attempts, func(w http.ResponseWriter, r *http.Request) {
				op := r.Method
				if r.URL.Query().Get("ifGenerationMatch") == "0" {
					op += " conditional"
				}
				mu.Lock()
				hits[op]++
				mu.Unlock()
				http.Error(w, `{"error":{"code":503,"message":"busy"}}`, http.StatusServiceUnavailable)
			})
			ctx := t.Context()
			for op, err := range map[string]error{
				"Stat":        func() error { _, err := be.Stat(ctx, keyK); return err }(),
				"Load":        be.Load(ctx, keyK, 0, 0, func(io.Reader) error { return nil }),
				"List":        be.List(ctx, storage.KeyFile, func(storage.FileInfo) error { return nil }),
				"Remove":      be.Remove(ctx, keyK),
				"Save":        be.Save(ctx, keyK, []byte("x"), storage.SaveOptions{}),
				"Save create": be.Save(ctx, keyK, []byte("x"), storage.SaveOptions{IfNotExists: true}),
			} {
				if err == nil || storage.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 503") {
					t.Errorf("%s = %v, want a transient error saying HTTP 503", op, err)
				}
			}
			want := map[string]int{"GET": 3 * attempts, "DELETE": 1, "POST": 1, "POST conditional": attempts}
			for op, n := range want {
				if hits[op] != n {
					t.Errorf("%d %s requests, want %d (all: %v)", hits[op], op, n, hits)
				}
			}
		})
	}
}

// TestRetryRecovers: a request that fails once succeeds on the second
// try.
func TestRetryRecovers(t *testing.T) {
	var n atomic.Int64
	be := scripted(t, 2, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"repo/keys/k","size":"3","timeCreated":"2026-01-02T03:04:05Z"}`)
	})
	fi, err := be.Stat(t.Context(), keyK)
	if err != nil || fi.Size != 3 || !fi.ModTime.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("Stat after a 429 = %+v, %v", fi, err)
	}
}

// media answers the media downloads of one object of data, of
// generation 7, with its CRC32C as crc, honouring Range headers; cut,
// when set, is called with each reply's body, and returns how much of
// it to send before breaking the connection (-1: all).
func media(t *testing.T, data []byte, crc uint32, cut func(n int) int) (http.HandlerFunc, *[]string) {
	var mu sync.Mutex
	var log []string
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("alt") != "media" {
			http.Error(w, "not media", http.StatusBadRequest)
			return
		}
		mu.Lock()
		log = append(log, r.Header.Get("Range")+" gen="+r.URL.Query().Get("generation"))
		mu.Unlock()
		body, status := data, http.StatusOK
		if rg := r.Header.Get("Range"); rg != "" {
			var from, to int
			if _, err := fmt.Sscanf(rg, "bytes=%d-%d", &from, &to); err != nil {
				to = len(data) - 1
			}
			body, status = data[from:to+1], http.StatusPartialContent
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(data)))
		}
		w.Header().Set("X-Goog-Generation", "7")
		w.Header().Set("X-Goog-Hash", "md5=AAAA,crc32c="+encodeCRC(crc))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		n := len(body)
		if cut != nil {
			if c := cut(n); c >= 0 {
				n = c
			}
		}
		_, _ = w.Write(body[:n])
		if n < len(body) {
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // breaks the connection
		}
	}, &log
}

// TestLoadResumes: a download cut short is read on from where it broke,
// from the same generation, and the whole object is checked against its
// CRC32C.
func TestLoadResumes(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10000)
	var replies atomic.Int64
	handle, log := media(t, data, crc32.Checksum(data, castagnoli), func(n int) int {
		if replies.Add(1) == 1 {
			return n / 3
		}
		return -1
	})
	be := scripted(t, 2, handle)
	got, err := storage.LoadAll(t.Context(), be, keyK)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Load of a cut reply = %d bytes, %v", len(got), err)
	}
	if want := []string{" gen=", fmt.Sprintf("bytes=%d- gen=7", len(data)/3)}; fmt.Sprint(*log) != fmt.Sprint(want) {
		t.Errorf("requests %q, want %q", *log, want)
	}

	// A ranged read resumes within its range.
	replies.Store(0)
	*log = nil
	err = be.Load(t.Context(), keyK, 3000, 100, func(rd io.Reader) error {
		b, err := io.ReadAll(rd)
		if err == nil && !bytes.Equal(b, data[100:3100]) {
			err = fmt.Errorf("read %d bytes, not the range", len(b))
		}
		return err
	})
	if err != nil {
		t.Errorf("ranged Load of a cut reply: %v", err)
	}
	if want := []string{"bytes=100-3099 gen=", "bytes=1100-3099 gen=7"}; fmt.Sprint(*log) != fmt.Sprint(want) {
		t.Errorf("requests %q, want %q", *log, want)
	}

	// A reply that keeps breaking without progress gives up.
	handle, _ = media(t, data, 0, func(int) int { return 0 })
	be = scripted(t, 2, handle)
	if _, err := storage.LoadAll(t.Context(), be, keyK); err == nil || storage.IsPermanent(err) {
		t.Errorf("Load of replies that always break = %v, want a transient error", err)
	}
}

// TestLoadChecksCRC: a whole object whose CRC32C does not match the one
// the service sends fails, transiently.
func TestLoadChecksCRC(t *testing.T) {
	data := []byte("the data")
	handle, _ := media(t, data, crc32.Checksum(data, castagnoli)+1, nil)
	be := scripted(t, 1, handle)
	_, err := storage.LoadAll(t.Context(), be, keyK)
	if err == nil || storage.IsPermanent(err) || !strings.Contains(err.Error(), "CRC32C") {
		t.Errorf("Load with a bad CRC32C = %v, want a transient error naming CRC32C", err)
	}
	// A part of the object is not checked.
	if err := be.Load(t.Context(), keyK, 3, 1, func(io.Reader) error { return nil }); err != nil {
		t.Errorf("ranged Load = %v", err)
	}
}

// TestLoadValidatesReply: a reply of another range than asked for, or
// the whole object for a range, fails without quoting it; a reply longer
// than the range is cut to it.
func TestLoadValidatesReply(t *testing.T) {
	for _, tc := range []struct {
		name, contentRange string
		status             int
		body               string
		wantErr            bool
	}{
		{"other start", "bytes 0-9/100", http.StatusPartialContent, "0123456789", true},
		{"bad header", "bytes " + storagetest.Secret, http.StatusPartialContent, "0123456789", true},
		{"whole object", "", http.StatusOK, "0123456789", true},
		{"longer", "bytes 5-20/100", http.StatusPartialContent, "0123456789abcdef", false},
		{"shorter", "bytes 5-9/100", http.StatusPartialContent, "01234", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := scripted(t, 1, func(w http.ResponseWriter, r *http.Request) {
				if tc.contentRange != "" {
					w.Header().Set("Content-Range", tc.contentRange)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			var got []byte
			err := be.Load(t.Context(), keyK, 10, 5, func(rd io.Reader) error {
				var err error
				got, err = io.ReadAll(rd)
				return err
			})
			storagetest.CheckQuote(t, tc.name, err)
			switch {
			case tc.wantErr && (err == nil || storage.IsPermanent(err)):
				t.Errorf("Load = %v, want a transient error", err)
			case !tc.wantErr && (err != nil || string(got) != "0123456789"):
				t.Errorf("Load = %q, %v; want the 10 bytes of the range", got, err)
			}
		})
	}
}

// TestListPages: a listing goes through every page, and stops with an
// error when the service hands out a page token again.
func TestListPages(t *testing.T) {
	for _, loop := range []bool{false, true} {
		var reqs atomic.Int64
		be := scripted(t, 1, func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			tok := r.URL.Query().Get("pageToken")
			next := map[string]string{"": "p2", "p2": "p3", "p3": ""}[tok]
			if loop && tok == "p3" {
				next = "p2"
			}
			if r.URL.Query().Get("prefix") != "repo/keys/" {
				http.Error(w, "bad prefix", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"items":[{"name":"repo/keys/k%s","size":"1"},{"name":"repo/keys/sub/x","size":"1"}],"nextPageToken":%q}`, tok, next)
		})
		var names []string
		err := be.List(t.Context(), storage.KeyFile, func(fi storage.FileInfo) error {
			names = append(names, fi.Name)
			return nil
		})
		switch {
		case !loop && (err != nil || fmt.Sprint(names) != "[k kp2 kp3]"):
			t.Errorf("List = %q, %v", names, err)
		case loop && (err == nil || reqs.Load() != 3):
			t.Errorf("List with a page token handed out again = %v after %d requests", err, reqs.Load())
		}
	}
}

// TestSaveRequest checks what an upload sends: the object's name,
// CRC32C and data, the packs' storage class for a pack of data only, and
// ifGenerationMatch=0 for a conditional create only.
func TestSaveRequest(t *testing.T) {
	var got []string
	be := scripted(t, 1, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.URL.Path+"?"+r.URL.Query().Get("uploadType")+"&"+r.URL.Query().Get("ifGenerationMatch")+" "+string(body))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"x"}`)
	})
	be.cfg.StorageClassPacks = "COLDLINE"
	h := storage.Handle{Type: storage.PackFile, Name: "abcd"}
	ctx := context.Background()
	if err := be.Save(ctx, h, []byte("pack data"), storage.SaveOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, h, []byte("pack data"), storage.SaveOptions{Metadata: true}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	crc := `"crc32c":"` + encodeCRC(crc32.Checksum([]byte("pack data"), castagnoli)) + `"`
	for i, req := range got {
		for _, s := range []string{"/upload/storage/v1/b/bkt/o?multipart&", `"name":"repo/packs/ab/abcd"`, crc, "pack data"} {
			if !strings.Contains(req, s) {
				t.Errorf("upload %d without %s: %s", i, s, req)
			}
		}
		if strings.Contains(req, `"storageClass":"COLDLINE"`) != (i == 0) || strings.Contains(req, "multipart&0 ") != (i == 0) {
			t.Errorf("upload %d: storage class or condition wrong: %s", i, req)
		}
	}
}
