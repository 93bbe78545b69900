package testsrv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// S3Server is a running S3-compatible object store.
type S3Server struct {
	// Endpoint is the "host:port" the server listens on.
	Endpoint string
	// URL is Endpoint with the scheme, e.g. "http://127.0.0.1:7070".
	URL string
	// AccessKey and SecretKey are the credentials of an account that may
	// create buckets.
	AccessKey, SecretKey string
	// Region is the region the server expects in signatures.
	Region string
	// Process is the server process; tests may Kill it to simulate an
	// outage.
	Process *Process
}

// newS3Server describes a server that is to listen on port of the
// loopback interface, with fresh credentials: a 20-character access key
// starting with tag (which tells the servers' keys apart in logs) and a
// 40-character secret key.
func newS3Server(t testing.TB, port int, tag string) *S3Server {
	t.Helper()
	s := &S3Server{
		Endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		AccessKey: tag + randomKey(t, 20-len(tag)),
		SecretKey: randomKey(t, 40),
		Region:    "us-east-1",
	}
	s.URL = "http://" + s.Endpoint
	return s
}

// randomKey returns n random hex characters.
func randomKey(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random key: %v", err)
	}
	return hex.EncodeToString(b)[:n]
}

// Versitygw starts a versitygw S3 gateway with its posix backend in a
// temporary directory, with bucket versioning (and so Object Lock)
// available, on a free loopback port, and stops it when the test ends.
func Versitygw(t testing.TB) *S3Server {
	t.Helper()
	bin := Tool(t, "versitygw", "")
	dir := t.TempDir()
	root, versions := filepath.Join(dir, "root"), filepath.Join(dir, "versions")
	for _, d := range []string{root, versions} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("versitygw: %v", err)
		}
	}
	s := newS3Server(t, FreePort(t, 0), "vgw")
	cmd := exec.Command(bin,
		"--port", s.Endpoint,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--quiet",
		// Without keep-alive the gateway drops idle connections at once,
		// and a client that reuses one fails with a broken pipe.
		"--keep-alive",
		"posix", "--versioning-dir", versions, root)
	cmd.Dir = dir
	s.Process = Start(t, "versitygw", cmd)
	s.Process.WaitTCP(t, s.Endpoint, 15*time.Second)
	return s
}

// String describes the server for test logs (without the secret).
func (s *S3Server) String() string {
	return fmt.Sprintf("%s (%s, access key %s)", s.URL, s.Process.Name, s.AccessKey)
}
