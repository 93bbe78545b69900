package testsrv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// FerretDBServer is a FerretDB v1 (a MongoDB-compatible server on SQLite)
// started by FerretDB. It speaks the MongoDB wire protocol but has no
// replica sets, no oplog, no views, no TTL indexes and no Decimal128,
// MinKey/MaxKey, JavaScript, Symbol, DBPointer or Undefined values.
type FerretDBServer struct {
	// URI is mongodb://127.0.0.1:PORT/ (with USER:PASSWORD@ when the
	// server has a user).
	URI  string
	Addr string // 127.0.0.1:PORT
	// User and Password are the administrator's, when Options asked for
	// authentication.
	User, Password string
	Dir            string
	Process        *Process

	bin  string
	opts FerretDBOptions
}

// FerretDBOptions configure a FerretDB server.
type FerretDBOptions struct {
	// User and Password, when set, turn on authentication (SCRAM, with
	// FerretDB's experimental "new auth") with this user in admin.
	User, Password string
}

// FerretDB starts an empty FerretDB server with SQLite storage on a free
// loopback port and stops it when the test ends. It skips the test (or
// fails it under BUNKER_REQUIRE_SERVERS=1) when ferretdb is not in the
// tool cache or on PATH.
func FerretDB(t testing.TB, opts ...FerretDBOptions) *FerretDBServer {
	t.Helper()
	bin := Tool(t, "ferretdb", "")
	var o FerretDBOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	return startFerretDB(t, bin, o)
}

func startFerretDB(t testing.TB, bin string, o FerretDBOptions) *FerretDBServer {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t, 0)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--handler=sqlite", "--sqlite-url=file:" + data + "/",
		"--state-dir=" + dir, "--listen-addr=" + addr,
		"--debug-addr=-", "--telemetry=disable", "--log-level=error",
	}
	s := &FerretDBServer{Addr: addr, Dir: dir, bin: bin, opts: o, URI: "mongodb://" + addr + "/"}
	var env []string
	if o.User != "" {
		args = append(args, "--test-enable-new-auth", "--setup-database=admin", "--setup-username="+o.User)
		// The password through the environment, not the command line.
		env = append(env, "FERRETDB_SETUP_PASSWORD="+o.Password)
		s.User, s.Password = o.User, o.Password
		s.URI = "mongodb://" + escapeUserinfo(o.User) + ":" + escapeUserinfo(o.Password) + "@" + addr + "/"
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(testutil.CleanEnviron(), env...)
	s.Process = Start(t, "ferretdb", cmd)
	s.Process.WaitTCP(t, addr, 30*time.Second)
	return s
}

// Kill ends the server at once (SIGKILL), as a crash.
func (s *FerretDBServer) Kill() { s.Process.Kill() }

// Stop ends the server cleanly.
func (s *FerretDBServer) Stop() { s.Process.Stop() }

// Another starts a second, empty server with the same options.
func (s *FerretDBServer) Another(t testing.TB) *FerretDBServer {
	t.Helper()
	return startFerretDB(t, s.bin, s.opts)
}

// escapeUserinfo percent-encodes everything but unreserved characters, as
// the MongoDB driver wants user names and passwords in a URI.
func escapeUserinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
