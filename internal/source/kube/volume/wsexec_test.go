package volume_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
)

// fakeExecServer is an API server that knows one running pod, ns/db, and
// answers exec requests over WebSocket (the server side of RFC 6455 and
// the v4.channel.k8s.io protocol) with a script chosen by the command.
func fakeExecServer(t *testing.T) (*rest.Config, kubernetes.Interface) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := func(code int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Message: msg, Code: int32(code)})
		}
		if r.Header.Get("Authorization") != "Bearer sesame" {
			status(http.StatusUnauthorized, "Unauthorized")
			return
		}
		switch r.URL.Path {
		case "/prefix/api/v1/namespaces/ns/pods/db":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(&corev1.Pod{
				TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
				ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning},
			})
		case "/prefix/api/v1/namespaces/ns/pods/db/exec":
			q := r.URL.Query()
			if q.Get("container") != "app" || q.Get("stdout") != "true" || q.Get("stderr") != "true" || q.Get("stdin") != "" {
				status(http.StatusBadRequest, "bad query "+r.URL.RawQuery)
				return
			}
			cmd := q["command"]
			if cmd[0] == "refuse" {
				status(http.StatusForbidden, `pods "db" is forbidden: no exec for you`)
				return
			}
			serveExec(t, w, r, cmd)
		default:
			status(http.StatusNotFound, "no "+r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := &rest.Config{
		Host:            srv.URL + "/prefix",
		BearerToken:     "sesame",
		TLSClientConfig: rest.TLSClientConfig{CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})},
	}
	cs, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	return cfg, cs
}

// serveExec upgrades an exec request to the v4.channel.k8s.io WebSocket
// protocol and plays the script of cmd.
func serveExec(t *testing.T, w http.ResponseWriter, r *http.Request, cmd []string) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), "v4.channel.k8s.io") {
		http.Error(w, "not a websocket request", http.StatusBadRequest)
		return
	}
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	s := &wsServer{t: t, rw: rw}
	s.script(cmd)
	_ = rw.Flush()
}

type wsServer struct {
	t  *testing.T
	rw *bufio.ReadWriter
}

// frame writes an unmasked server frame.
func (s *wsServer) frame(fin bool, op byte, payload []byte) {
	b := op
	if fin {
		b |= 0x80
	}
	hdr := []byte{b}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, byte(n))
	case n < 1<<16:
		hdr = append(hdr, 126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	_, _ = s.rw.Write(hdr)
	_, _ = s.rw.Write(payload)
	_ = s.rw.Flush()
}

func (s *wsServer) send(ch byte, data string) { s.frame(true, 2, append([]byte{ch}, data...)) }

func (s *wsServer) status(st metav1.Status) {
	b, _ := json.Marshal(st)
	s.send(3, string(b))
}

// readClient reads one masked client frame.
func (s *wsServer) readClient() (byte, []byte) {
	var h [2]byte
	if _, err := io.ReadFull(s.rw, h[:]); err != nil {
		s.t.Errorf("read client frame: %v", err)
		return 0, nil
	}
	if h[1]&0x80 == 0 {
		s.t.Error("client frame not masked")
	}
	n := int(h[1] & 0x7f)
	var mask [4]byte
	_, _ = io.ReadFull(s.rw, mask[:])
	p := make([]byte, n)
	_, _ = io.ReadFull(s.rw, p)
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return h[0] & 0x0f, p
}

func (s *wsServer) close() {
	s.frame(true, 8, []byte{0x03, 0xe8})
	if op, _ := s.readClient(); op != 8 {
		s.t.Errorf("client answered close with opcode %d", op)
	}
}

func (s *wsServer) script(cmd []string) {
	// Every channel first gets an empty message, as the kubelet does.
	for ch := byte(0); ch < 4; ch++ {
		s.send(ch, "")
	}
	switch cmd[0] {
	case "echo":
		s.send(1, strings.Repeat("x", 70000)) // a 64-bit length
		// Standard output in a fragmented message, a ping in between.
		s.frame(false, 2, []byte("\x01hel"))
		s.frame(true, 9, []byte("are you there"))
		if op, p := s.readClient(); op != 0xA || string(p) != "are you there" {
			s.t.Errorf("pong: opcode %d %q", op, p)
		}
		s.frame(true, 0, []byte("lo "+strings.Join(cmd[1:], " ")+"\n"))
		s.send(2, "a warning")
		s.status(metav1.Status{Status: metav1.StatusSuccess})
		s.close()
	case "fail":
		s.send(1, "some output")
		s.send(2, "oops\nit broke")
		s.status(metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode", Message: "command terminated with non-zero exit code: 3",
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "3"}}}})
		s.close()
	case "broken":
		s.status(metav1.Status{Status: metav1.StatusFailure, Message: "container not found (\"app\")"})
		s.close()
	case "drop":
		s.send(1, "half")
		// The connection ends without a status or close frame.
	case "hang":
		_, _ = io.Copy(io.Discard, s.rw) // until the client gives up
	case "huge":
		_, _ = s.rw.Write([]byte{0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0})
		_ = s.rw.Flush()
	}
}

// TestExecStream runs hooks against the fake API server: output, exit
// codes, refusals, timeouts and broken streams.
func TestExecStream(t *testing.T) {
	cfg, cs := fakeExecServer(t)
	ctx := context.Background()
	hook := func(cmd ...string) volume.Hook {
		return volume.Hook{Namespace: "ns", Pod: "db", Command: cmd, Timeout: 10 * time.Second}
	}
	out, errOut, err := volume.Exec(ctx, cfg, cs, hook("echo", "world"))
	if err != nil || !strings.HasSuffix(out, "xhello world\n") || len(out) != 4096 || errOut != "a warning" {
		t.Errorf("echo: %d bytes %q, %q, %v", len(out), out[max(len(out)-20, 0):], errOut, err)
	}
	_, errOut, err = volume.Exec(ctx, cfg, cs, hook("fail"))
	var ee *volume.ExitError
	if err == nil || err.Error() != "hook ns/db:app: fail exited with code 3: oops; it broke" || errOut != "oops\nit broke" || !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("fail: %q %v", errOut, err)
	}
	for cmd, want := range map[string]string{
		"refuse": `hook ns/db:app: exec refuse: pods "db" is forbidden: no exec for you (HTTP 403)`,
		"broken": `hook ns/db:app: exec broken: container not found ("app")`,
		"drop":   "before the command's exit status",
		"huge":   "longer than",
	} {
		if _, _, err := volume.Exec(ctx, cfg, cs, hook(cmd)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", cmd, err, want)
		}
	}
	h := hook("hang")
	h.Timeout = 200 * time.Millisecond
	if _, _, err := volume.Exec(ctx, cfg, cs, h); err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Errorf("hang: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if _, _, err := volume.Exec(cctx, cfg, cs, hook("hang")); !errors.Is(err, context.Canceled) {
		t.Errorf("hang, cancelled: %v", err)
	}
	bad := *cfg
	bad.BearerToken = "wrong"
	if _, _, err := volume.Exec(ctx, &bad, cs, hook("echo")); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("wrong token: %v", err)
	}
}
