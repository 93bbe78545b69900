package volume

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// This file is a small client of the Kubernetes exec protocol over
// WebSocket (RFC 6455 with the channel.k8s.io subprotocols, as kubectl
// speaks it): client-go's remotecommand package needs modules this
// module does not require (gorilla/websocket, k8s.io/streaming). The
// command gets no standard input, so the client only reads: channel 1 is
// standard output, 2 standard error, 3 the final metav1.Status.

// Subprotocols offered, newest first. v4 and v5 end with a Status on the
// error channel; v5 adds a close signal for standard input, unused here.
var execProtocols = []string{"v5.channel.k8s.io", "v4.channel.k8s.io"}

const (
	wsGUID          = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	maxMessageBytes = 16 << 20

	chanStdout = 1
	chanStderr = 2
	chanError  = 3
)

// ExitError is a command that exited non-zero.
type ExitError struct {
	Code    int
	Message string // the server's, e.g. "command terminated with non-zero exit code"
}

func (e *ExitError) Error() string { return fmt.Sprintf("exit code %d", e.Code) }

// execRoundTripper is an HTTP/1.1 round tripper for cfg that can switch
// protocols (HTTP/2 cannot), with cfg's authentication.
func execRoundTripper(cfg *rest.Config) (http.RoundTripper, func(), error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, nil, err
	}
	tlsConf, err := transport.TLSConfigFor(tc)
	if err != nil {
		return nil, nil, err
	}
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	tlsConf.NextProtos = []string{"http/1.1"}
	proxy := cfg.Proxy
	if proxy == nil {
		proxy = utilnet.NewProxierWithNoProxyCIDR(http.ProxyFromEnvironment)
	}
	base := &http.Transport{Proxy: proxy, TLSClientConfig: tlsConf, ForceAttemptHTTP2: false}
	if cfg.Dial != nil {
		base.DialContext = cfg.Dial
	}
	rt, err := transport.HTTPWrappersForConfig(tc, base)
	if err != nil {
		return nil, nil, err
	}
	return rt, base.CloseIdleConnections, nil
}

// streamExec opens the exec request u as a WebSocket through rt and
// copies the command's output to stdout and stderr until the server
// closes the stream. It returns an *ExitError when the command exited
// non-zero, and the server's message when the request was refused.
func streamExec(ctx context.Context, rt http.RoundTripper, u *url.URL, stdout, stderr io.Writer) error {
	var keyBytes [16]byte
	if _, err := rand.Read(keyBytes[:]); err != nil {
		return err
	}
	key := base64.StdEncoding.EncodeToString(keyBytes[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Protocol", strings.Join(execProtocols, ", "))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var st metav1.Status
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			return fmt.Errorf("%s (HTTP %d)", st.Message, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %s: %s", resp.Status, oneLine(string(body)))
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return errors.New("the connection cannot be upgraded")
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return errors.New("WebSocket handshake: wrong Sec-WebSocket-Accept")
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); !slices.Contains(execProtocols, p) {
		return fmt.Errorf("WebSocket handshake: the server chose protocol %q, not one of %s", p, strings.Join(execProtocols, ", "))
	}

	ws := &wsConn{r: bufio.NewReader(conn), w: conn}
	var status []byte
	for {
		msg, err := ws.readMessage()
		if err == io.EOF { // a close frame
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.ErrUnexpectedEOF) && len(status) > 0 {
				break // the server dropped the connection after its status
			}
			return fmt.Errorf("exec stream: %w (before the command's exit status)", err)
		}
		if len(msg) == 0 {
			continue
		}
		data := msg[1:]
		switch msg[0] {
		case chanStdout:
			_, err = stdout.Write(data)
		case chanStderr:
			_, err = stderr.Write(data)
		case chanError:
			if len(status)+len(data) > maxMessageBytes {
				return errors.New("exec stream: status too long")
			}
			status = append(status, data...)
		}
		if err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return execStatus(status)
}

// execStatus turns the status sent on the error channel into an error.
func execStatus(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var st metav1.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("exec stream: unreadable status %q", oneLine(string(b[:min(len(b), 200)])))
	}
	if st.Status == metav1.StatusSuccess {
		return nil
	}
	if st.Reason == "NonZeroExitCode" && st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Type == "ExitCode" {
				code, err := strconv.Atoi(c.Message)
				if err == nil {
					return &ExitError{Code: code, Message: st.Message}
				}
			}
		}
	}
	if st.Message == "" {
		return fmt.Errorf("exec failed (%s)", st.Reason)
	}
	return errors.New(st.Message)
}

// wsConn reads WebSocket messages on the client side, answering pings
// and close frames.
type wsConn struct {
	r      *bufio.Reader
	w      io.Writer
	closed bool
}

// readMessage returns the next data message; io.EOF after a close
// frame, io.ErrUnexpectedEOF when the connection ends without one.
func (c *wsConn) readMessage() ([]byte, error) {
	var msg []byte
	started := false
	for {
		if c.closed {
			return nil, io.EOF
		}
		fin, op, payload, err := c.readFrame(maxMessageBytes - len(msg))
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x8: // close
			c.closed = true
			code := []byte{}
			if len(payload) >= 2 {
				code = payload[:2]
			}
			_ = c.writeFrame(0x8, code)
			return nil, io.EOF
		case 0x9: // ping
			if err := c.writeFrame(0xA, payload); err != nil {
				return nil, err
			}
			continue
		case 0xA: // pong
			continue
		case 0x1, 0x2:
			if started {
				return nil, errors.New("a new message began inside a fragmented one")
			}
			started = true
		case 0x0:
			if !started {
				return nil, errors.New("a continuation frame without a message")
			}
		default:
			return nil, fmt.Errorf("unknown WebSocket opcode %#x", op)
		}
		msg = append(msg, payload...)
		if fin {
			return msg, nil
		}
	}
}

// readFrame reads one frame of at most limit payload bytes.
func (c *wsConn) readFrame(limit int) (fin bool, op byte, payload []byte, err error) {
	defer func() {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}()
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	if h[0]&0x70 != 0 {
		return false, 0, nil, errors.New("WebSocket frame with reserved bits set")
	}
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if op >= 0x8 && (n > 125 || !fin) {
		return false, 0, nil, errors.New("invalid WebSocket control frame")
	}
	if n > uint64(max(limit, 125)) {
		return false, 0, nil, fmt.Errorf("WebSocket message longer than %d bytes", maxMessageBytes)
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(c.r, mask[:]); err != nil {
			return false, 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return false, 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return fin, op, payload, nil
}

// writeFrame writes a final, masked frame (clients must mask).
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	if len(payload) > 125 {
		return errors.New("control frame too long")
	}
	var mask [4]byte
	if _, err := rand.Read(mask[:]); err != nil {
		return err
	}
	b := make([]byte, 0, 6+len(payload))
	b = append(b, 0x80|op, 0x80|byte(len(payload)))
	b = append(b, mask[:]...)
	for i, x := range payload {
		b = append(b, x^mask[i%4])
	}
	_, err := c.w.Write(b)
	return err
}
