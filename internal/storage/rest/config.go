package rest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config holds everything needed to reach the store; parsed from the part
// of the location URL after "rest:" plus environment variables.
type Config struct {
	// Dial, when set, makes every connection (a policy's checked
	// dialer); the backend then uses no proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// URL is the server's base URL, scheme and host only ("https://host:8000").
	URL *url.URL
	// Repo is the repository path on the server: "/" or "/name" or
	// "/user/name", without a trailing slash (except "/").
	Repo string
	// User and Password are the HTTP basic credentials; User empty means
	// no credentials are sent.
	User, Password string
	// CAFile, when set, is a PEM file of the certificates that sign the
	// server's certificate, used instead of the system roots.
	CAFile string
	// Fingerprint, when set, is the SHA-256 of the server certificate
	// (DER): the certificate is accepted if and only if it matches,
	// whoever signed it and whatever names it holds.
	Fingerprint []byte
	// ResponseTimeout bounds the wait for a reply's headers once a
	// request is sent (default 2 minutes).
	ResponseTimeout time.Duration
}

// Environment variables ParseConfig reads.
const (
	EnvPassword    = "BUNKER_REST_PASSWORD"
	EnvCA          = "BUNKER_REST_CA"
	EnvFingerprint = "BUNKER_REST_FINGERPRINT"
)

// ParseConfig parses a location such as "https://user@host:8000/repo" (the
// part after "rest:") and the environment: BUNKER_REST_PASSWORD (the
// password; one in the URL is used only when this is empty),
// BUNKER_REST_CA (a PEM file of CA certificates) and
// BUNKER_REST_FINGERPRINT ("sha256:" and 64 hex digits, colons allowed).
func ParseConfig(loc string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	u, err := url.Parse(loc)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, which may hold a password
		}
		return Config{}, fmt.Errorf("rest location: %w", err)
	}
	redacted := u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return Config{}, fmt.Errorf("rest location %q: the URL must start with https:// or http://", redacted)
	case u.Host == "" || u.Hostname() == "":
		return Config{}, fmt.Errorf("rest location %q: no host", redacted)
	case u.Opaque != "":
		return Config{}, fmt.Errorf("rest location %q: the URL must be of the form https://host/repo", redacted)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return Config{}, fmt.Errorf("rest location %q: the URL may not have a query or fragment", redacted)
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return Config{}, fmt.Errorf("rest location %q: bad port %q", redacted, p)
		}
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	if u.RawPath != "" {
		return Config{}, fmt.Errorf("rest location %q: the repository path may not hold escaped characters", redacted)
	}
	segs, err := SplitRepoPath(path)
	if err != nil {
		return Config{}, fmt.Errorf("rest location %q: %w", redacted, err)
	}
	cfg := Config{
		URL:  &url.URL{Scheme: u.Scheme, Host: u.Host},
		Repo: "/" + strings.Join(segs, "/"),
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.User == "" {
			return Config{}, fmt.Errorf("rest location %q: empty user name", redacted)
		}
	}
	if pw := getenv(EnvPassword); pw != "" {
		cfg.Password = pw
	}
	cfg.CAFile = getenv(EnvCA)
	if fp := getenv(EnvFingerprint); fp != "" {
		b, err := ParseFingerprint(fp)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvFingerprint, err)
		}
		cfg.Fingerprint = b
	}
	if u.Scheme == "http" && (cfg.CAFile != "" || cfg.Fingerprint != nil) {
		return Config{}, fmt.Errorf("rest location %q: %s and %s need an https:// URL", redacted, EnvCA, EnvFingerprint)
	}
	if cfg.CAFile != "" && cfg.Fingerprint != nil {
		return Config{}, fmt.Errorf("rest location %q: set %s or %s, not both", redacted, EnvCA, EnvFingerprint)
	}
	return cfg, nil
}

// Validate checks a Config built by hand.
func (c Config) Validate() error {
	if c.URL == nil || (c.URL.Scheme != "http" && c.URL.Scheme != "https") || c.URL.Host == "" {
		return errors.New("rest config: URL must be http(s)://host[:port]")
	}
	if _, err := SplitRepoPath(c.Repo); err != nil {
		return fmt.Errorf("rest config: %w", err)
	}
	if c.Fingerprint != nil && len(c.Fingerprint) != 32 {
		return errors.New("rest config: fingerprint must be 32 bytes (SHA-256)")
	}
	return nil
}

// ParseFingerprint parses "sha256:" and the 64 hex digits of a SHA-256
// hash (upper or lower case, optionally with colons between bytes).
func ParseFingerprint(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !ok {
		return nil, fmt.Errorf("fingerprint %q: want sha256:<64 hex digits>", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(rest, ":", ""))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("fingerprint %q: want sha256:<64 hex digits>", s)
	}
	return b, nil
}

// FormatFingerprint formats a SHA-256 certificate hash as ParseFingerprint
// reads it.
func FormatFingerprint(sum []byte) string { return "sha256:" + hex.EncodeToString(sum) }

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' || n > 65535 {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

// location is the URL the user typed, without the password.
func (c Config) location() string {
	u := *c.URL
	if c.User != "" {
		u.User = url.User(c.User)
	}
	u.Path = c.Repo
	return "rest:" + u.String()
}
