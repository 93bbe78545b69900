package testsrv

import (
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// FakeGCSServer is a running fake-gcs-server.
type FakeGCSServer struct {
	// Host is host:port of the server, the value for
	// STORAGE_EMULATOR_HOST.
	Host string
	// URL is http://Host.
	URL  string
	Proc *Process
}

// FakeGCS starts fake-gcs-server (a Google Cloud Storage emulator,
// installed by scripts/tools/fake-gcs-server.sh) with in-memory storage on
// a free loopback port and stops it when the test ends. It accepts any
// credentials or none.
func FakeGCS(t testing.TB) *FakeGCSServer {
	t.Helper()
	bin := Tool(t, "fake-gcs-server", "")
	port := FreePort(t, 0)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	// Without -public-host uploads work but reads fail: the server
	// matches the Host of download requests against it.
	cmd := exec.Command(bin,
		"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
		"-public-host", host, "-external-url", "http://"+host,
		"-backend", "memory", "-log-level", "warn")
	cmd.Dir = t.TempDir()
	p := Start(t, "fake-gcs-server", cmd)
	p.WaitTCP(t, host, 30*time.Second)
	return &FakeGCSServer{Host: host, URL: "http://" + host, Proc: p}
}
