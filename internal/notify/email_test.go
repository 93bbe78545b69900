package notify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// smtpServer is a tiny SMTP server (RFC 5321: EHLO/HELO, STARTTLS, AUTH
// PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) on 127.0.0.1 that records
// the messages it accepts.
type smtpServer struct {
	Addr string
	// TLS, when set, makes the server offer STARTTLS.
	TLS *tls.Config
	// Users, when set, makes the server offer AUTH PLAIN LOGIN and
	// require it before MAIL.
	Users map[string]string
	// MailReplies answer MAIL commands in turn (then 250).
	MailReplies []string
	// Silent servers accept connections and never greet.
	Silent bool

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	msgs  []smtpMessage
	count int // sessions
}

// smtpMessage is one accepted message.
type smtpMessage struct {
	From string
	To   []string
	Data []byte // as received, dot-unstuffed, CRLF line ends kept
	TLS  bool
	User string // authenticated user
}

// startSMTP starts s; it is stopped in t.Cleanup.
func startSMTP(t *testing.T, s *smtpServer) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.Addr, s.conns = ln, ln.Addr().String(), map[net.Conn]bool{}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.count++
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				s.serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

func (s *smtpServer) sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func (s *smtpServer) serve(conn net.Conn) {
	if s.Silent {
		_, _ = io.Copy(io.Discard, conn)
		return
	}
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	reply := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		w.Flush()
	}
	readLine := func() (string, bool) {
		l, err := r.ReadString('\n')
		if err != nil || !strings.HasSuffix(l, "\r\n") {
			return "", false
		}
		return strings.TrimSuffix(l, "\r\n"), true
	}
	reply("220 test ESMTP")
	var msg smtpMessage
	isTLS, user := false, ""
	for {
		line, ok := readLine()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := []string{"250-test"}
			if s.TLS != nil && !isTLS {
				ext = append(ext, "250-STARTTLS")
			}
			if s.Users != nil {
				ext = append(ext, "250-AUTH PLAIN LOGIN")
			}
			ext = append(ext, "250 8BITMIME")
			reply(ext...)
		case "HELO", "NOOP":
			reply("250 ok")
		case "STARTTLS":
			if s.TLS == nil || isTLS {
				reply("502 no")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(conn, s.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
			isTLS, user, msg = true, "", smtpMessage{}
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if s.Users == nil || !strings.EqualFold(mech, "PLAIN") {
				reply("504 unsupported")
				continue
			}
			if resp == "" {
				reply("334 ")
				if resp, ok = readLine(); !ok {
					return
				}
			}
			b, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if err != nil || len(parts) != 3 || s.Users[parts[1]] == "" || s.Users[parts[1]] != parts[2] {
				reply("535 5.7.8 authentication failed")
				continue
			}
			user = parts[1]
			reply("235 ok")
		case "MAIL":
			if s.Users != nil && user == "" {
				reply("530 authentication required")
				continue
			}
			s.mu.Lock()
			answer := "250 ok"
			if len(s.MailReplies) > 0 {
				answer, s.MailReplies = s.MailReplies[0], s.MailReplies[1:]
			}
			s.mu.Unlock()
			if !strings.HasPrefix(answer, "2") {
				reply(answer)
				continue
			}
			from, _, _ := strings.Cut(strings.TrimPrefix(arg, "FROM:"), " ") // drop BODY=8BITMIME etc.
			msg = smtpMessage{From: from, TLS: isTLS, User: user}
			reply(answer)
		case "RCPT":
			msg.To = append(msg.To, strings.TrimPrefix(arg, "TO:"))
			reply("250 ok")
		case "DATA":
			reply("354 go on")
			var data bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			msg.Data = data.Bytes()
			s.mu.Lock()
			s.msgs = append(s.msgs, msg)
			s.mu.Unlock()
			msg = smtpMessage{}
			reply("250 queued")
		case "RSET":
			msg = smtpMessage{}
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown command")
		}
	}
}

func boolp(b bool) *bool { return &b }

func emailConfig(s *smtpServer, starttls *bool) *plan.Email {
	return &plan.Email{SMTP: s.Addr, From: "Bunker <bunker@example.com>", To: []string{"ops@example.com", "Jörg <jorg@example.com>"}, StartTLS: starttls}
}

// parseMessage parses a received message and checks its line ends.
func parseMessage(t *testing.T, data []byte) (*mail.Message, string) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("message has bare LFs:\n%q", data)
	}
	for l := range strings.SplitSeq(string(data), "\r\n") {
		if len(l) > 998 {
			t.Errorf("line of %d bytes", len(l))
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return m, strings.ReplaceAll(string(body), "\r\n", "\n")
}

func TestEmailPlain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		starttls *bool
	}{
		{"starttls false", boolp(false)},
		{"opportunistic, not offered", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSMTP(t, &smtpServer{})
			n, _ := newTest(t, plan.Notify{Email: emailConfig(s, tc.starttls)})
			ev := testEvent()
			ev.Message += "\n.a line with a leading dot\n" + strings.Repeat("long ", 300) + "\nÜnïcödé"
			if err := n.Notify(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			msgs := s.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			got := msgs[0]
			if got.From != "<bunker@example.com>" || strings.Join(got.To, ",") != "<ops@example.com>,<jorg@example.com>" || got.TLS || got.User != "" {
				t.Errorf("envelope from %s to %s, TLS %v, user %q", got.From, got.To, got.TLS, got.User)
			}
			m, body := parseMessage(t, got.Data)
			h := m.Header
			if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "bunker@example.com" || from.Name != "Bunker" {
				t.Errorf("From %q (%v)", h.Get("From"), err)
			}
			if to, err := h.AddressList("To"); err != nil || len(to) != 2 || to[1].Name != "Jörg" {
				t.Errorf("To %q (%v)", h.Get("To"), err)
			}
			if subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil || subj != "[bunker] job home failed" {
				t.Errorf("Subject %q (%v)", h.Get("Subject"), err)
			}
			if d, err := h.Date(); err != nil || !d.Equal(testTime) {
				t.Errorf("Date %q (%v)", h.Get("Date"), err)
			}
			if id := h.Get("Message-ID"); !regexp.MustCompile(`^<[0-9a-f]{32}@backup1>$`).MatchString(id) {
				t.Errorf("Message-ID %q", id)
			}
			for k, v := range map[string]string{
				"Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable",
				"MIME-Version": "1.0", "Auto-Submitted": "auto-generated",
				"X-Bunker-Kind": "failure", "X-Bunker-Severity": "critical", "X-Bunker-Job": "home",
			} {
				if h.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, h.Get(k), v)
				}
			}
			for _, want := range []string{
				"job home failed\n\n",
				ev.Message + "\n",
				"\n.a line with a leading dot\n",
				"Job: home\nKind: failure\nSeverity: critical\nHost: backup1\nRun: r-42\nTime: 2026-05-04T02:00:00Z\nduration: 1m2s\nrepository: nas\n",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
		})
	}
}

func TestEmailAuthPlain(t *testing.T) {
	const password = "pa55-w0rd"
	s := startSMTP(t, &smtpServer{Users: map[string]string{"bunker": password}})
	cfg := emailConfig(s, nil)
	cfg.Username, cfg.Password = "bunker", "env:SMTP_PASSWORD"
	env := map[string]string{"SMTP_PASSWORD": password}
	n, logs := newTest(t, plan.Notify{Email: cfg}, func(o *Options) { o.Getenv = func(k string) string { return env[k] } })
	if err := n.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if msgs := s.messages(); len(msgs) != 1 || msgs[0].User != "bunker" {
		t.Fatalf("messages %+v", msgs)
	}

	// A wrong password is permanent: one session, an error without the
	// password.
	env["SMTP_PASSWORD"] = "wrong-" + password
	before := s.sessions()
	err := n.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "535") || !strings.Contains(err.Error(), "AUTH PLAIN") {
		t.Fatalf("err = %v, want the 535 reply to AUTH", err)
	}
	if s.sessions() != before+1 {
		t.Errorf("%d sessions for a permanent failure", s.sessions()-before)
	}
	if strings.Contains(err.Error(), password) || strings.Contains(logs.String(), password) {
		t.Errorf("password leaked: %v\n%s", err, logs)
	}

	// An unresolvable secret says which.
	delete(env, "SMTP_PASSWORD")
	if err := n.Notify(context.Background(), testEvent()); err == nil || !strings.Contains(err.Error(), "email.password") || !strings.Contains(err.Error(), "SMTP_PASSWORD") {
		t.Errorf("err = %v", err)
	}
	// command: references use RunSecretCommand.
	n, _ = newTest(t, plan.Notify{Email: &plan.Email{SMTP: s.Addr, From: "b@example.com", To: []string{"o@example.com"}, Username: "bunker", Password: "command:get-pw"}},
		func(o *Options) {
			o.RunSecretCommand = func(_ context.Context, cmd string) (string, error) {
				if cmd != "get-pw" {
					return "", errors.New("unexpected command")
				}
				return password, nil
			}
		})
	if err := n.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
}

func TestEmailAuthNotOffered(t *testing.T) {
	s := startSMTP(t, &smtpServer{})
	cfg := emailConfig(s, nil)
	cfg.Username, cfg.Password = "bunker", "env:PW"
	n, _ := newTest(t, plan.Notify{Email: cfg}, func(o *Options) { o.Getenv = func(string) string { return "x" } })
	if err := n.Notify(context.Background(), testEvent()); err == nil || !strings.Contains(err.Error(), "does not offer AUTH") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmailStartTLSRequiredNotOffered(t *testing.T) {
	s := startSMTP(t, &smtpServer{})
	n, _ := newTest(t, plan.Notify{Email: emailConfig(s, boolp(true))})
	err := n.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") || !strings.Contains(err.Error(), "email via "+s.Addr) {
		t.Fatalf("err = %v", err)
	}
	if len(s.messages()) != 0 || s.sessions() != 1 {
		t.Errorf("%d messages in %d sessions, want none in 1", len(s.messages()), s.sessions())
	}
}

// testCert returns a self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bunker test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestEmailStartTLS(t *testing.T) {
	cert, pool := testCert(t)
	s := startSMTP(t, &smtpServer{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Users: map[string]string{"bunker": "pw"}})
	for _, starttls := range []*bool{nil, boolp(true)} {
		cfg := emailConfig(s, starttls)
		cfg.Username, cfg.Password = "bunker", "env:PW"
		n, _ := newTest(t, plan.Notify{Email: cfg}, func(o *Options) { o.Getenv = func(string) string { return "pw" } })
		n.tlsConfig = &tls.Config{RootCAs: pool}
		if err := n.Notify(context.Background(), testEvent()); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range s.messages() {
		if !m.TLS || m.User != "bunker" {
			t.Errorf("message %+v not sent over TLS after AUTH", m)
		}
	}
	if len(s.messages()) != 2 {
		t.Errorf("%d messages, want 2", len(s.messages()))
	}

	// An untrusted certificate is a permanent failure, never a silent
	// downgrade.
	n, _ := newTest(t, plan.Notify{Email: emailConfig(s, nil)})
	before := s.sessions()
	err := n.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v", err)
	}
	if s.sessions() != before+1 || len(s.messages()) != 2 {
		t.Errorf("untrusted server: %d sessions, %d messages", s.sessions()-before, len(s.messages())-2)
	}
}

func TestEmailRetries(t *testing.T) {
	s := startSMTP(t, &smtpServer{MailReplies: []string{"451 4.3.0 try again later"}})
	n, _ := newTest(t, plan.Notify{Email: emailConfig(s, nil)})
	if err := n.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if len(s.messages()) != 1 || s.sessions() != 2 {
		t.Errorf("%d messages in %d sessions, want 1 in 2", len(s.messages()), s.sessions())
	}

	s = startSMTP(t, &smtpServer{MailReplies: []string{"550 5.7.1 sender rejected"}})
	n, _ = newTest(t, plan.Notify{Email: emailConfig(s, nil)})
	err := n.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "MAIL FROM: 550") || !strings.Contains(err.Error(), "sender rejected") {
		t.Fatalf("err = %v", err)
	}
	if s.sessions() != 1 {
		t.Errorf("%d sessions for a permanent failure", s.sessions())
	}

	// Nobody listening: retried, then the connect error.
	n, _ = newTest(t, plan.Notify{Email: &plan.Email{SMTP: "127.0.0.1:" + strconv.Itoa(freePort(t)), From: "b@example.com", To: []string{"o@example.com"}}})
	if err := n.Notify(context.Background(), testEvent()); err == nil || !strings.Contains(err.Error(), "connect") || !strings.Contains(err.Error(), "attempt 3 of 3") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmailSilentServer(t *testing.T) {
	s := startSMTP(t, &smtpServer{Silent: true})
	n, _ := newTest(t, plan.Notify{Email: emailConfig(s, nil)})
	// Long enough for the connection under a loaded CI machine (100 ms
	// once ran out while dialling): the wait it tests is the greeting's.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := n.Notify(ctx, testEvent())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "greeting") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmailHeaderInjection(t *testing.T) {
	s := startSMTP(t, &smtpServer{})
	// A configured address with a line break is refused.
	for _, cfg := range []*plan.Email{
		{SMTP: s.Addr, From: "b@example.com\r\nBcc: evil@example.com", To: []string{"o@example.com"}},
		{SMTP: s.Addr, From: "b@example.com", To: []string{"o@example.com\nBcc: evil@example.com"}},
		{SMTP: s.Addr, From: "not an address", To: []string{"o@example.com"}},
	} {
		n, _ := newTest(t, plan.Notify{Email: cfg})
		if err := n.Notify(context.Background(), testEvent()); err == nil {
			t.Errorf("from %q to %q: no error", cfg.From, cfg.To)
		}
	}
	if s.sessions() != 0 {
		t.Errorf("%d sessions for refused configurations", s.sessions())
	}
	// An event's title, job or kind with line breaks cannot add headers.
	n, _ := newTest(t, plan.Notify{Email: emailConfig(s, nil)})
	ev := testEvent()
	ev.Title = "job home failed\r\nBcc: evil@example.com\r\n\r\nfake body"
	ev.Job = "home\nX-Evil: 1"
	ev.Kind = "failure\r\nX-Evil: 2"
	if err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m, _ := parseMessage(t, s.messages()[0].Data)
	for k := range m.Header {
		switch k {
		case "From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted", "X-Bunker-Kind", "X-Bunker-Severity", "X-Bunker-Job":
		default:
			t.Errorf("injected header %s: %q", k, m.Header.Get(k))
		}
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); subj != "[bunker] job home failed Bcc: evil@example.com fake body" {
		t.Errorf("Subject %q", subj)
	}
}

// FuzzEmailMessage: whatever an event holds, the message parses, has
// exactly the headers bunker writes, one Subject line, and a body that
// decodes to the event's text.
func FuzzEmailMessage(f *testing.F) {
	f.Add("job home failed", "exit 1\n.\n", "home", "failure", "k", "v")
	f.Add("a\r\nBcc: x@y", "\r\n.\r\n", "j\nX: 1", "\x00", "\r", "\n")
	f.Add("=?utf-8?q?x?=", strings.Repeat("é", 400), "ü", "321", "", "")
	f.Add(strings.Repeat("€", 300), "", strings.Repeat("x ", 600), "", "", "")
	cfg := &plan.Email{From: "Bunker <b@example.com>", To: []string{"o@example.com"}}
	allowed := map[string]bool{"From": true, "To": true, "Subject": true, "Date": true, "Message-Id": true, "Mime-Version": true,
		"Content-Type": true, "Content-Transfer-Encoding": true, "Auto-Submitted": true, "X-Bunker-Kind": true, "X-Bunker-Severity": true, "X-Bunker-Job": true}
	f.Fuzz(func(t *testing.T, title, message, job, kind, key, value string) {
		ev := Event{Kind: kind, Severity: "critical", Job: job, Title: title, Message: message, Time: testTime, Fields: map[string]string{key: value}}
		data, err := buildMessage(cfg, ev, "host", testTime)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatalf("bare CR or LF in %q", data)
		}
		for l := range strings.SplitSeq(string(data), "\r\n") {
			if len(l) > 998 {
				t.Fatalf("line of %d bytes: %q", len(l), l)
			}
		}
		m, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v: %q", err, data)
		}
		if len(m.Header) != len(allowed) {
			t.Fatalf("headers %v", m.Header)
		}
		for k, v := range m.Header {
			if !allowed[k] || len(v) != 1 {
				t.Fatalf("header %s: %q", k, v)
			}
		}
		want := strings.TrimSpace("[bunker] " + oneLine(title))
		if subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil || subj != want {
			t.Fatalf("Subject %q decodes to %q (%v), want %q", m.Header.Get("Subject"), subj, err, want)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		if m := strings.TrimRight(message, "\n"); utf8.ValidString(m) && len(message) <= maxMessage && !strings.Contains(strings.ReplaceAll(string(body), "\r\n", "\n"), strings.ReplaceAll(strings.ReplaceAll(m, "\r\n", "\n"), "\r", "\n")) {
			t.Fatalf("body %q lacks the message %q", body, m)
		}
	})
}
