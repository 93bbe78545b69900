package restserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/zeebo/blake3"
	"golang.org/x/crypto/bcrypt"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
)

// Tests written from the side of an attacker who holds a tenant's
// credentials of "bunker serve" (docs/SECURITY.md).

// hangBound only detects a hang: everything here completes in seconds.
const hangBound = 60 * time.Second

var tenants = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

// liveServer is a Server on a loopback port over TLS.
type liveServer struct {
	s    *Server
	addr string
}

func startLive(t *testing.T, opts Options) *liveServer {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if !opts.NoAuth {
		var b strings.Builder
		for u, pw := range tenants {
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:%s\n", u, h)
		}
		u, err := ParseHtpasswd(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		opts.Users = u
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &liveServer{s: s, addr: ln.Addr().String()}
}

// client returns the rest: backend of repo as user, creating the
// repository.
func (ls *liveServer) client(t *testing.T, repo, user string) *rest.Backend {
	t.Helper()
	cfg := rest.Config{URL: &url.URL{Scheme: "https", Host: ls.addr}, Repo: repo, User: user, Password: tenants[user]}
	cfg.Fingerprint, _ = rest.ParseFingerprint(ls.s.Fingerprint())
	be, err := rest.Create(t.Context(), cfg)
	if err != nil {
		t.Fatalf("create %s as %s: %v", repo, user, err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

// stalled is an HTTP/1.1 request whose body stops after a few bytes.
type stalled struct {
	conn  net.Conn
	reply chan string // the status line, or the read error
}

// stall sends the headers of a POST claiming a body of claimed bytes and
// the first few bytes of it, then sends nothing more.
func (ls *liveServer) stall(t *testing.T, user, path string, claimed int64) *stalled {
	t.Helper()
	conn, err := tls.Dial("tcp", ls.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + tenants[user]))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\n\r\n%s",
		path, ls.addr, auth, claimed, strings.Repeat("x", 100))
	st := &stalled{conn: conn, reply: make(chan string, 1)}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			st.reply <- "connection ended: " + err.Error()
			return
		}
		_ = resp.Body.Close()
		st.reply <- resp.Status
	}()
	return st
}

func gaugeValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// waitFor polls cond until it holds, failing the test after hangBound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", hangBound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// packLike is random content with its content address.
func packLike(t *testing.T, n int) (storage.Handle, []byte) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	sum := blake3.Sum256(b)
	return storage.Handle{Type: storage.PackFile, Name: hex.EncodeToString(sum[:])}, b
}

// TestStalledTenantDoesNotBlockOthers: alice opens POSTs that claim
// pack-sized bodies, send a few bytes and stall; bob's pack uploads still
// complete while they hang (the rate rule is set out of reach here, so
// only the per-user shares and taking memory as bytes arrive can let bob
// through). On the original server each POST reserved its claimed length
// from the shared budget and all slots were open to one user.
func TestStalledTenantDoesNotBlockOthers(t *testing.T) {
	for _, tc := range []struct {
		name          string
		maxConcurrent int
		stalls        int
	}{
		// Six 4 MiB claims exceed the 16 MiB budget.
		{"memory", 64, 6},
		// Eight requests would take every slot.
		{"slots", 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := startLive(t, Options{
				PrivateRepos:   true,
				MaxRequestSize: 4 << 20,
				UploadMemory:   16 << 20,
				MaxConcurrent:  tc.maxConcurrent,
				TransferWindow: time.Hour,
			})
			bob := ls.client(t, "/bob/r", "bob")
			ls.client(t, "/alice/r", "alice")
			var stalls []*stalled
			for i := range tc.stalls {
				h, _ := packLike(t, i+1)
				stalls = append(stalls, ls.stall(t, "alice", "/alice/r/packs/"+h.Name, 4<<20))
			}
			waitFor(t, "alice's stalled requests reach the server", func() bool {
				return gaugeValue(t, ls.s.m.inFlight)+gaugeValue(t, ls.s.m.rejected) >= float64(tc.stalls)
			})

			ctx, cancel := context.WithTimeout(t.Context(), hangBound)
			defer cancel()
			for i := range 4 {
				h, data := packLike(t, 3<<20)
				if err := bob.Save(ctx, h, data, storage.SaveOptions{}); err != nil {
					t.Fatalf("bob's upload %d while alice's uploads stall: %v", i, err)
				}
				got, err := storage.LoadAll(ctx, bob, h)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("bob's pack %d reads back wrong: %v", i, err)
				}
			}
			for _, st := range stalls {
				select {
				case r := <-st.reply:
					// Refused at once: only for slots beyond alice's share.
					if !strings.HasPrefix(r, "503") {
						t.Errorf("a stalled request of alice ended with %q while it was stalled", r)
					}
				default:
				}
			}
		})
	}
}

// TestStalledTransfersAreCutOff: uploads whose bodies stop arriving and
// downloads whose reader stops reading are cut off by the minimum
// transfer rate, while transfers at loopback speed under the same rule
// succeed. The original server gave a 4 MiB body more than two minutes.
func TestStalledTransfersAreCutOff(t *testing.T) {
	ls := startLive(t, Options{
		MaxRequestSize:  16 << 20,
		MinTransferRate: 64 << 10,
		TransferWindow:  time.Second,
	})
	alice := ls.client(t, "/alice/r", "alice")
	bob := ls.client(t, "/bob/r", "bob")

	t.Run("upload", func(t *testing.T) {
		var stalls []*stalled
		for range 4 {
			h, _ := packLike(t, 1)
			stalls = append(stalls, ls.stall(t, "alice", "/alice/r/packs/"+h.Name, 4<<20))
		}
		for i, st := range stalls {
			select {
			case r := <-st.reply:
				if !strings.HasPrefix(r, "408") && !strings.HasPrefix(r, "connection ended") {
					t.Errorf("stalled upload %d ended with %q, want 408 or a closed connection", i, r)
				}
			case <-time.After(hangBound):
				t.Fatalf("stalled upload %d not cut off within %v", i, hangBound)
			}
		}
		h, data := packLike(t, 3<<20)
		if err := bob.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
			t.Fatalf("upload at full speed under the rate rule: %v", err)
		}
	})

	t.Run("download", func(t *testing.T) {
		h, data := packLike(t, 16<<20)
		if err := alice.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", ls.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		auth := base64.StdEncoding.EncodeToString([]byte("alice:" + tenants["alice"]))
		// Pipelined GETs: 48 MiB of replies that nobody reads, more than
		// the socket buffers hold, so the server's writes block.
		for range 3 {
			fmt.Fprintf(conn, "GET /alice/r/packs/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n\r\n", h.Name, auth)
		}
		waitFor(t, "the download starts", func() bool { return gaugeValue(t, ls.s.m.inFlight) >= 1 })
		waitFor(t, "the server gives up on a reader that does not read", func() bool { return gaugeValue(t, ls.s.m.inFlight) == 0 })
		got, err := storage.LoadAll(t.Context(), alice, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("download at full speed under the rate rule: %v", err)
		}
	})
}

// TestUploadMemoryShares: the defaults and the checks of the per-user
// share.
func TestUploadMemoryShares(t *testing.T) {
	for _, tc := range []struct {
		name              string
		o                 Options
		wantAll, wantUser int64
		wantErr           string
	}{
		{"defaults", Options{}, 1 << 30, 512 << 20, ""},
		{"big budget", Options{UploadMemory: 8 << 30}, 8 << 30, 2 << 30, ""},
		{"big requests", Options{MaxRequestSize: 1 << 30}, 4 << 30, 2 << 30, ""},
		{"small", Options{MaxRequestSize: 4 << 20, UploadMemory: 16 << 20}, 16 << 20, 8 << 20, ""},
		{"budget too small", Options{UploadMemory: 256 << 20}, 0, 0, "no user can take all"},
		{"share too small", Options{UserUploadMemory: 256 << 20}, 0, 0, "twice the largest request"},
		{"share too big", Options{UserUploadMemory: 600 << 20}, 0, 0, "no user can take all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Dir, tc.o.NoAuth = "d", true
			err := tc.o.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || tc.o.UploadMemory != tc.wantAll || tc.o.UserUploadMemory != tc.wantUser {
				t.Fatalf("Validate = %v: upload memory %d, per user %d; want %d, %d", err, tc.o.UploadMemory, tc.o.UserUploadMemory, tc.wantAll, tc.wantUser)
			}
		})
	}
}

// hashName is the content address of b.
func hashName(b []byte) string {
	sum := blake3.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestAppendOnlyRefusesWhatBackupsDoNotWrite plays a backup host with an
// append-only credential that tries to plant what maintenance or other
// hosts would trust: maint/ plans and leases, objects under names that
// are not their content's hash, malformed names, overwrites. The
// original server accepted any valid name.
func TestAppendOnlyRefusesWhatBackupsDoNotWrite(t *testing.T) {
	ls := startLive(t, Options{AppendOnly: true, PrivateRepos: true})
	be := ls.client(t, "/alice/r", "alice")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	t.Cleanup(c.CloseIdleConnections)
	do := func(method, path string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, "https://"+ls.addr+"/alice/r/"+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("alice", tenants["alice"])
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		msg, _ := io.ReadAll(resp.Body)
		// Clients quote the message of the Bunker-Error header only.
		if hdr := resp.Header.Get(rest.HeaderError); resp.StatusCode >= 400 && hdr != strings.TrimSpace(string(msg)) {
			t.Errorf("%s %s: Bunker-Error header %q, body %q: want the same message", method, path, hdr, msg)
		}
		return resp.StatusCode, strings.TrimSpace(string(msg))
	}
	snap := []byte("BNKR\x01\x05\x00\x00 a sealed snapshot")
	other := []byte("BNKR\x01\x04\x00\x00 an index that lists nothing")
	session := "s-" + strings.Repeat("0a", 12)
	for _, tc := range []struct {
		method, path string
		body         []byte
		want         int
		msg          string
	}{
		// maint/ belongs to prune with a maintenance credential.
		{"POST", "maint/plan-" + strings.Repeat("ab", 12), []byte("plan"), 403, "maintenance credential"},
		{"POST", "maint/lease", []byte("lease"), 403, "maintenance credential"},
		{"POST", "maint/clock-0123456789abcdef", []byte("clock"), 403, "maintenance credential"},
		{"POST", "maint/retention", []byte("{}"), 403, "maintenance credential"},
		{"DELETE", "maint/lease", nil, 403, "may not be deleted"},
		// Content-addressed objects: malformed names and names that are
		// not the hash of the body.
		{"POST", "snapshots/s1", snap, 400, "BLAKE3-256"},
		{"POST", "keys/k", []byte("key"), 400, "BLAKE3-256"},
		{"POST", "index/" + strings.Repeat("0", 63), other, 400, "BLAKE3-256"},
		{"POST", "snapshots/" + hashName(other), snap, 403, "not the BLAKE3-256 of the body"},
		{"POST", "index/" + hashName(snap), other, 403, "not the BLAKE3-256 of the body"},
		{"POST", "packs/" + hashName(snap), other, 403, "not the BLAKE3-256 of the body"},
		{"POST", "keys/" + hashName(snap), other, 403, "not the BLAKE3-256 of the body"},
		// What backups write is accepted.
		{"POST", "snapshots/" + hashName(snap), snap, 200, ""},
		{"POST", "index/" + hashName(other), other, 200, ""},
		// Re-uploading identical bytes is harmless (a retried save).
		{"POST", "snapshots/" + hashName(snap), snap, 200, ""},
		// Overwrites and deletes of data are refused.
		{"POST", "config", []byte("config one"), 200, ""},
		{"POST", "config", []byte("config two"), 403, "may not be overwritten"},
		{"DELETE", "config", nil, 403, "may not be deleted"},
		{"DELETE", "snapshots/" + hashName(snap), nil, 403, "may not be deleted"},
		{"DELETE", "index/" + hashName(other), nil, 403, "may not be deleted"},
		// Sessions: well-formed names only; writers refresh and remove them.
		{"POST", "sessions/writer-1", []byte("s"), 400, "session name"},
		{"POST", "sessions/s-0A0A0A0A0A0A0A0A0A0A0A0A", []byte("s"), 400, ""},
		{"POST", "sessions/" + session, []byte("s"), 200, ""},
		{"POST", "sessions/" + session, []byte("s, refreshed"), 200, ""},
		{"DELETE", "sessions/" + session, nil, 200, ""},
	} {
		code, msg := do(tc.method, tc.path, tc.body)
		if code != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s = %d %q, want %d with %q", tc.method, tc.path, code, msg, tc.want, tc.msg)
		}
	}
	// Nothing was planted under maint/, and what was accepted is intact.
	dir := filepath.Join(ls.s.dir, "alice", "r")
	if ents, _ := os.ReadDir(filepath.Join(dir, "maint")); len(ents) != 0 {
		t.Errorf("maint/ holds %d objects after the attack", len(ents))
	}
	got, err := storage.LoadAll(t.Context(), be, storage.Handle{Type: storage.SnapshotFile, Name: hashName(snap)})
	if err != nil || !bytes.Equal(got, snap) {
		t.Errorf("snapshot after the attack: %q, %v", got, err)
	}
	got, err = storage.LoadAll(t.Context(), be, storage.Handle{Type: storage.ConfigFile})
	if err != nil || string(got) != "config one" {
		t.Errorf("config after the attack: %q, %v", got, err)
	}

	// The maintenance credential (a server without --append-only on the
	// same directory) may write maint/ and any valid name.
	maint := startLive(t, Options{Dir: ls.s.dir, PrivateRepos: true})
	mbe := maint.client(t, "/alice/m", "alice")
	for _, h := range []storage.Handle{{Type: storage.MaintFile, Name: "lease"}, {Type: storage.SnapshotFile, Name: "s1"}} {
		if err := mbe.Save(t.Context(), h, []byte("x"), storage.SaveOptions{}); err != nil {
			t.Errorf("maintenance save of %v: %v", h, err)
		}
		if err := mbe.Remove(t.Context(), h); err != nil {
			t.Errorf("maintenance remove of %v: %v", h, err)
		}
	}
}
