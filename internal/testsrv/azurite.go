package testsrv

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Well-known credentials of the Azurite emulator (published in its
// documentation; they protect nothing).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteServer is a running Azurite blob service.
type AzuriteServer struct {
	// Endpoint is the path-style service URL,
	// http://127.0.0.1:PORT/devstoreaccount1.
	Endpoint string
	Account  string
	Key      string // base64 shared key
	Proc     *Process
}

var azuriteListening = regexp.MustCompile(`listens on (http://127\.0\.0\.1:[0-9]+)`)

// Azurite starts an in-memory Azurite blob service (the npm package
// azurite, installed by scripts/tools/azurite.sh) on a free loopback port
// and stops it when the test ends.
func Azurite(t testing.TB) *AzuriteServer {
	t.Helper()
	bin := Tool(t, "azurite", "node_modules/.bin/azurite-blob")
	if filepath.Base(bin) != "azurite-blob" {
		// Found "azurite" on PATH, which would also start the queue and
		// table services on fixed ports: use its blob-only sibling.
		b, err := exec.LookPath("azurite-blob")
		if err != nil {
			Missing(t, "azurite-blob is not installed (found %s)", bin)
		}
		bin = b
	}
	if _, err := exec.LookPath("node"); err != nil {
		Missing(t, "node (needed by azurite) is not installed")
	}
	// Port 0 lets Azurite pick a port, which it prints, so there is no
	// race with other tests for a port chosen in advance. With
	// --inMemoryPersistence Azurite refuses --location; it still works in
	// its current directory, a temporary one here.
	cmd := exec.Command(bin,
		"--blobHost", "127.0.0.1", "--blobPort", "0",
		"--inMemoryPersistence", "--extentMemoryLimit", "1024",
		"--silent", "--skipApiVersionCheck", "--disableTelemetry")
	cmd.Dir = t.TempDir()
	p := Start(t, "azurite", cmd)
	var endpoint string
	p.WaitFor(t, 60*time.Second, func(context.Context) bool {
		m := azuriteListening.FindStringSubmatch(p.Output())
		if m == nil {
			return false
		}
		endpoint = m[1]
		return true
	})
	p.WaitTCP(t, strings.TrimPrefix(endpoint, "http://"), 10*time.Second)
	return &AzuriteServer{
		Endpoint: endpoint + "/" + AzuriteAccount,
		Account:  AzuriteAccount,
		Key:      AzuriteKey,
		Proc:     p,
	}
}
