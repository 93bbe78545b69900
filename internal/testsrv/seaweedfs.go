package testsrv

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// SeaweedFS starts a single-process SeaweedFS cluster ("weed mini":
// master, volume server, filer and S3 gateway) in a temporary directory on
// free loopback ports, and stops it when the test ends. Its S3 gateway
// has versioning and Object Lock.
func SeaweedFS(t testing.TB) *S3Server {
	t.Helper()
	bin := Tool(t, "seaweedfs", "weed")
	dir := t.TempDir()
	// Every port p also uses p+10000 for gRPC: keep them below 55535 and
	// their gRPC twins free as well.
	ports := make([]int, 0, 5)
	for len(ports) < 5 {
		p := FreePort(t, 55535)
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000))); err == nil {
			_ = l.Close()
			ports = append(ports, p)
		}
	}
	master, volume, filer, s3, admin := ports[0], ports[1], ports[2], ports[3], ports[4]
	s := newS3Server(t, s3, "swfs")
	cmd := exec.Command(bin, "mini",
		"-dir="+dir,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port="+strconv.Itoa(master),
		"-volume.port="+strconv.Itoa(volume),
		"-filer.port="+strconv.Itoa(filer),
		"-s3.port="+strconv.Itoa(s3),
		"-admin.port="+strconv.Itoa(admin),
		"-admin.port.legacy=0", "-webdav=false", "-admin.ui=false",
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
		// mini sizes its volume count by the free disk space: on a fuller
		// disk the buckets of a conformance run (each its own collection,
		// several volumes each) ran out of volumes ("No writable volumes
		// and no free volumes left", HTTP 500). Volumes are not
		// preallocated: small ones, many allowed, whatever the disk.
		"-master.volumeSizeLimitMB=64", "-volume.max=1000",
	)
	cmd.Dir = dir
	cmd.Env = append(testutil.CleanEnviron(), "AWS_ACCESS_KEY_ID="+s.AccessKey, "AWS_SECRET_ACCESS_KEY="+s.SecretKey)
	s.Process = Start(t, "seaweedfs", cmd)
	// The S3 port opens before the filer behind it is ready: wait for an
	// S3 reply (any status but 5xx).
	// No keep-alive: an idle connection would outlive the test.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	s.Process.WaitFor(t, 60*time.Second, func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode < 500
	})
	return s
}
