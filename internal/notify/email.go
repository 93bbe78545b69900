package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// smtpTimeout bounds one SMTP attempt (dial to QUIT).
const smtpTimeout = 30 * time.Second

// sendEmail mails ev to e.To. The message (and its Message-ID) and the
// password are made once; only the SMTP session is retried.
func (n *Notifier) sendEmail(ctx context.Context, e *plan.Email, ev Event) error {
	addr := smtpAddr(e.SMTP)
	what := "email via " + addr
	from, to, err := envelope(e)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg, err := buildMessage(e, ev, n.hostname, n.now())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var password string
	if e.Username != "" {
		if e.Password == "" {
			return fmt.Errorf("%s: email.username is set but email.password is not", what)
		}
		password, err = plan.ResolveSecret(e.Password, n.getenv, func(cmd string) (string, error) { return n.run(ctx, cmd) })
		if err != nil {
			return fmt.Errorf("%s: resolve email.password: %w", what, err)
		}
	}
	return n.deliver(ctx, what, func(ctx context.Context) error {
		return n.smtpSend(ctx, e, addr, from, to, msg, password)
	})
}

// smtpAddr adds the default port 25 to a host without one.
func smtpAddr(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "25")
}

// envelope returns the bare addresses of e.From and e.To.
func envelope(e *plan.Email) (string, []string, error) {
	from, err := parseAddress("email.from", e.From)
	if err != nil {
		return "", nil, err
	}
	if len(e.To) == 0 {
		return "", nil, errors.New("email.to is empty")
	}
	var to []string
	for _, s := range e.To {
		a, err := parseAddress("email.to", s)
		if err != nil {
			return "", nil, err
		}
		to = append(to, a.Address)
	}
	return from.Address, to, nil
}

func parseAddress(field, s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%s %q contains a line break", field, s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not an address: %w", field, s, err)
	}
	if strings.ContainsFunc(a.Address, func(r rune) bool { return r < 0x21 || r == 0x7f || r == '<' || r == '>' }) {
		return nil, fmt.Errorf("%s %q: the address has characters SMTP cannot carry", field, s)
	}
	return a, nil
}

// buildMessage renders ev as an RFC 5322 message with CRLF line ends.
// Every header value is checked for CR and LF; the title is flattened
// to one line first, so an event cannot add headers.
func buildMessage(e *plan.Email, ev Event, hostname string, now time.Time) ([]byte, error) {
	from, err := parseAddress("email.from", e.From)
	if err != nil {
		return nil, err
	}
	var to []string
	for _, s := range e.To {
		a, err := parseAddress("email.to", s)
		if err != nil {
			return nil, err
		}
		to = append(to, a.String())
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	q := func(s string) string { return encodeWords(oneLine(s)) }

	var b bytes.Buffer
	headers := [][2]string{
		{"From", from.String()},
		{"To", strings.Join(to, ", ")},
		{"Subject", strings.TrimSpace("[bunker] " + q(ev.Title))},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id[:]) + "@" + messageIDDomain(hostname) + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"Auto-Submitted", "auto-generated"},
		{"X-Bunker-Kind", q(ev.Kind)},
		{"X-Bunker-Severity", q(ev.Severity)},
		{"X-Bunker-Job", q(ev.Job)},
	}
	for _, h := range headers {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, fmt.Errorf("header %s would contain a line break", h[0])
		}
		b.WriteString(fold(h[0] + ": " + h[1]))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")

	var text strings.Builder
	text.WriteString(oneLine(ev.Title) + "\n")
	if ev.Message != "" {
		text.WriteString("\n" + strings.TrimRight(truncate(ev.Message, maxMessage, truncated), "\n") + "\n")
	}
	text.WriteString("\n")
	for _, f := range factList(ev, hostname) {
		text.WriteString(oneLine(f[0]) + ": " + oneLine(f[1]) + "\n")
	}
	qp := quotedprintable.NewWriter(&b) // writes CRLF line ends
	if _, err := io.WriteString(qp, strings.ToValidUTF8(text.String(), "\uFFFD")); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeWords returns s (one line of valid UTF-8) as it may stand in a
// header: itself when it is printable ASCII, else RFC 2047 encoded words
// (base64, at most 75 characters each). Text with "=?" is encoded too, or
// a reader would decode what merely looks like an encoded word.
func encodeWords(s string) string {
	plain := !strings.Contains(s, "=?")
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f
	}
	if plain {
		return s
	}
	const chunk = 45 // bytes: base64 of 45 is 60, plus "=?utf-8?b?" and "?="
	var words []string
	for s != "" {
		n := min(len(s), chunk)
		for n < len(s) && n > 1 && !utf8.RuneStart(s[n]) {
			n--
		}
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, " ")
}

// fold breaks a header line at spaces so that its lines stay within 78
// characters where it can (RFC 5322 2.2.3); readers unfold CRLF SP back to
// SP. Encoded words are at most 75 characters, so a Subject of any length
// keeps within the hard limit of 998.
func fold(line string) string {
	const width = 78
	var b strings.Builder
	n := 0
	for i, w := range strings.Split(line, " ") {
		if i > 0 {
			if n+1+len(w) > width {
				b.WriteString("\r\n")
				n = 0
			}
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// messageIDDomain is hostname reduced to what a Message-ID may hold.
func messageIDDomain(hostname string) string {
	d := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return -1
	}, hostname)
	d = strings.Trim(d, ".-")
	if d == "" {
		return "bunker.invalid"
	}
	return d
}

// smtpSend runs one SMTP session. Network errors and 4xx replies can be
// retried; everything else is permanent.
func (n *Notifier) smtpSend(ctx context.Context, e *plan.Email, addr, from string, to []string, msg []byte, password string) (err error) {
	host, _, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Unblock any read or write when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
	}()

	step := "greeting"
	fail := func(err error) error {
		err = fmt.Errorf("%s: %w", step, err)
		if isTransient(err) {
			return err
		}
		return permanent(err)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	step = "EHLO"
	if err := c.Hello(messageIDDomain(n.hostname)); err != nil {
		return fail(err)
	}
	offered, _ := c.Extension("STARTTLS")
	switch {
	case e.StartTLS != nil && !*e.StartTLS:
	case offered:
		step = "STARTTLS"
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if n.tlsConfig != nil {
			cfg = n.tlsConfig.Clone()
		}
		cfg.ServerName = host
		if err := c.StartTLS(cfg); err != nil {
			return fail(err)
		}
	case e.StartTLS != nil:
		return permanent(errors.New("the server does not offer STARTTLS, which email.starttls requires"))
	}
	if e.Username != "" {
		step = "AUTH PLAIN"
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return permanent(errors.New("AUTH PLAIN: the server does not offer AUTH (email.username is set)"))
		}
		if !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return permanent(fmt.Errorf("AUTH PLAIN: the server offers only AUTH %s", oneLine(mechs)))
		}
		if err := c.Auth(smtp.PlainAuth("", e.Username, password, host)); err != nil {
			if err.Error() == "unencrypted connection" {
				return permanent(errors.New("AUTH PLAIN: refusing to send the password over an unencrypted connection to a remote server (the server offers no STARTTLS, or email.starttls is false)"))
			}
			return fail(err)
		}
	}
	step = "MAIL FROM"
	if err := c.Mail(from); err != nil {
		return fail(err)
	}
	for _, rcpt := range to {
		step = "RCPT TO " + rcpt
		if err := c.Rcpt(rcpt); err != nil {
			return fail(err)
		}
	}
	step = "DATA"
	w, err := c.Data()
	if err != nil {
		return fail(err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	// The message is accepted: a failing QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// isTransient reports whether an SMTP session error may go away: a 4xx
// reply or a network failure.
func isTransient(err error) bool {
	if te := (*textproto.Error)(nil); errors.As(err, &te) {
		return te.Code >= 400 && te.Code < 500
	}
	if ne := net.Error(nil); errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
