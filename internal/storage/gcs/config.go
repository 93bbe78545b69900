package gcs

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// DefaultMaxAttempts is how often the backend tries an idempotent request
// (1 = no retries). It is low on purpose: the storage retry decorator above
// the backend decides about retries.
const DefaultMaxAttempts = 2

// Config holds everything needed to reach the store; parsed from the part of the
// location URL after "gs:" plus environment variables.
type Config struct {
	// Dial, when set, makes every connection (a policy's checked
	// dialer); the backend then uses no proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// NoAmbientCredentials refuses to use the process's own identity
	// (application default credentials: a metadata server, a workload
	// identity, a credentials file in its home). Only the emulator can be
	// reached without it, as a location cannot bring Google credentials
	// as a value.
	NoAmbientCredentials bool
	// Bucket is the bucket holding the repository.
	Bucket string
	// Prefix is the object name prefix of the repository, without
	// leading or trailing slashes; empty for the root of the bucket.
	Prefix string

	// CredentialsFile is a JSON credentials file
	// (GOOGLE_APPLICATION_CREDENTIALS): a service account key, or an
	// authorized user, impersonated service account or external account
	// configuration. Empty means Application Default Credentials (the
	// metadata server on Google Cloud, gcloud's user credentials).
	CredentialsFile string
	// ProjectID is the project new buckets are created in
	// (GOOGLE_PROJECT_ID); only Create needs it, and only when the
	// bucket is missing.
	ProjectID string
	// EmulatorHost is host:port (or a URL) of a GCS emulator such as
	// fake-gcs-server (STORAGE_EMULATOR_HOST). When set, requests go
	// there without credentials.
	EmulatorHost string
	// Endpoint overrides the JSON API endpoint (e.g.
	// "http://127.0.0.1:4443/storage/v1/") while keeping the credentials;
	// for tests and private endpoints. Not read from the environment.
	Endpoint string

	// StorageClassPacks, when set, is the storage class packs are written
	// with (BUNKER_GS_STORAGE_CLASS_PACKS): STANDARD, NEARLINE, COLDLINE or
	// ARCHIVE. Other objects get the bucket's default class.
	StorageClassPacks string

	// ChunkSize, when positive, makes uploads of objects larger than it
	// resumable, in chunks of this size (rounded up to 256 KiB by the
	// library), each retried on its own; 0 sends every object in one
	// request.
	ChunkSize int
	// MaxAttempts is how often the backend tries an idempotent request
	// (and reads on after a download broke without progress); 0 means
	// DefaultMaxAttempts, 1 means no retries.
	MaxAttempts int
	// RetryDelay is the longest first pause between attempts (each pause
	// is a random part of one that doubles up to 2 s); 0 means 200 ms.
	RetryDelay time.Duration

	// loc is the location as the user typed it, after "gs:".
	loc string
}

// ParseConfig parses a location of the form "bucket:/prefix" (the part
// after "gs:"; the prefix is optional) and reads the credentials and
// options from getenv.
func ParseConfig(loc string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	bucket, prefix, _ := strings.Cut(loc, ":")
	if err := validBucket(bucket); err != nil {
		return Config{}, fmt.Errorf("gs location %q: %w", loc, err)
	}
	prefix, err := objstore.CleanPrefix(prefix)
	if err != nil {
		return Config{}, fmt.Errorf("gs location %q: %w", loc, err)
	}
	cfg := Config{
		Bucket:            bucket,
		Prefix:            prefix,
		CredentialsFile:   strings.TrimSpace(getenv("GOOGLE_APPLICATION_CREDENTIALS")),
		ProjectID:         strings.TrimSpace(getenv("GOOGLE_PROJECT_ID")),
		EmulatorHost:      strings.TrimSpace(getenv("STORAGE_EMULATOR_HOST")),
		StorageClassPacks: strings.ToUpper(strings.TrimSpace(getenv("BUNKER_GS_STORAGE_CLASS_PACKS"))),
		loc:               loc,
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the config.
func (c *Config) Validate() error {
	if err := validBucket(c.Bucket); err != nil {
		return fmt.Errorf("gs: %w", err)
	}
	p, err := objstore.CleanPrefix(c.Prefix)
	if err != nil {
		return fmt.Errorf("gs: %w", err)
	}
	c.Prefix = p
	if c.NoAmbientCredentials && c.EmulatorHost == "" {
		return fmt.Errorf("gs: this repository would use the identity of the process opening it (application default credentials or a credentials file), which it does not lend")
	}
	if c.EmulatorHost != "" {
		if _, err := emulatorEndpoint(c.EmulatorHost); err != nil {
			return fmt.Errorf("gs: STORAGE_EMULATOR_HOST: %w", err)
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("gs: invalid endpoint %q: want http(s)://host[:port]/path", c.Endpoint)
		}
	}
	switch c.StorageClassPacks {
	case "", "STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE":
	default:
		return fmt.Errorf("gs: BUNKER_GS_STORAGE_CLASS_PACKS: unknown storage class %q: want STANDARD, NEARLINE, COLDLINE or ARCHIVE", c.StorageClassPacks)
	}
	switch {
	case c.ChunkSize < 0:
		return fmt.Errorf("gs: negative chunk size %d", c.ChunkSize)
	case c.MaxAttempts < 0:
		return fmt.Errorf("gs: negative max attempts %d", c.MaxAttempts)
	case c.RetryDelay < 0:
		return fmt.Errorf("gs: negative retry delay %v", c.RetryDelay)
	}
	return nil
}

// emulatorEndpoint is the JSON API endpoint of an emulator given as
// host:port or URL, as Google's client libraries read
// STORAGE_EMULATOR_HOST.
func emulatorEndpoint(host string) (string, error) {
	u := &url.URL{Scheme: "http", Host: host}
	if strings.Contains(host, "://") {
		var err error
		u, err = url.Parse(host)
		if err != nil {
			return "", fmt.Errorf("invalid URL %q", host)
		}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(u.Host, "/?#@") {
		return "", fmt.Errorf("invalid emulator host %q: want host:port or http(s)://host:port", host)
	}
	return u.Scheme + "://" + u.Host + "/storage/v1/", nil
}

// location is the location string of the config: "gs:bucket:/prefix".
func (c Config) location() string {
	if c.loc != "" {
		return "gs:" + c.loc
	}
	if c.Prefix == "" {
		return "gs:" + c.Bucket
	}
	return "gs:" + c.Bucket + ":/" + c.Prefix
}

// String describes the config. It holds no secrets (the credentials stay
// in their file), but names the credentials file.
func (c Config) String() string {
	auth := "application default credentials"
	switch {
	case c.EmulatorHost != "":
		auth = "none (emulator " + c.EmulatorHost + ")"
	case c.CredentialsFile != "":
		auth = "credentials file " + c.CredentialsFile
	}
	return fmt.Sprintf("%s (auth %s)", c.location(), auth)
}

// validBucket checks the Cloud Storage bucket naming rules (without the
// domain-name verification dotted names need).
func validBucket(name string) error {
	bad := func(why string) error { return fmt.Errorf("invalid bucket name %q: %s", name, why) }
	if len(name) < 3 || len(name) > 222 {
		return bad("want 3-63 characters (222 with dots)")
	}
	for i, part := range strings.Split(name, ".") {
		if part == "" {
			return bad("empty dot-separated part")
		}
		if len(part) > 63 {
			return bad(fmt.Sprintf("part %d longer than 63 characters", i+1))
		}
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return bad("want lowercase letters, digits, '-', '_' and '.'")
		}
	}
	first, last := name[0], name[len(name)-1]
	if !isAlnum(first) || !isAlnum(last) {
		return bad("must start and end with a letter or digit")
	}
	if strings.HasPrefix(name, "goog") || strings.Contains(name, "google") {
		return bad(`may not start with "goog" or contain "google"`)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
