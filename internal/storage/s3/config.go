package s3

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Defaults of the tunables in Config.
const (
	// DefaultPartSize is the part size of multipart uploads. Objects up
	// to this size go in one PUT request.
	DefaultPartSize = 16 << 20
	// MinPartSize and MaxPartSize bound Config.PartSize (S3's limits).
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
	// DefaultMaxRetries is how many attempts minio-go makes per request
	// itself. 1 means it never retries: the storage retry decorator
	// above the backend decides about retries.
	DefaultMaxRetries = 1
)

// The values of Config.BucketLookup.
const (
	LookupAuto = "auto" // virtual-host style for AWS and similar hosts, else path style
	LookupPath = "path" // https://host/bucket/key
	LookupDNS  = "dns"  // https://bucket.host/key
)

// The values of Config.SSE.
const (
	SSES3  = "AES256"  // server-side encryption with keys the store manages
	SSEKMS = "aws:kms" // server-side encryption with a KMS key
)

// The values of Config.ConditionalCreate.
const (
	CondAuto = "auto"  // probe the store at Open
	CondOn   = "true"  // trust the store to honour If-None-Match
	CondOff  = "false" // never send If-None-Match; stat, then put
)

// Config holds everything needed to reach the store; parsed from the part of the
// location URL after "s3:" plus environment variables.
//
// It holds secrets (the credentials, the SSE-C key); String leaves them
// out, so a Config may be printed.
type Config struct {
	// Endpoint is the "host[:port]" of the S3 service.
	Endpoint string
	// Insecure selects plain http instead of https.
	Insecure bool
	// Bucket is the bucket holding the repository.
	Bucket string
	// Prefix is the key prefix of the repository, without leading or
	// trailing slashes; empty for the root of the bucket.
	Prefix string

	// Region is the region of the bucket (query "region",
	// BUNKER_S3_REGION, AWS_REGION, AWS_DEFAULT_REGION); empty lets
	// minio-go ask the store.
	Region string
	// BucketLookup is LookupAuto (default), LookupPath or LookupDNS.
	BucketLookup string

	// StorageClass is the storage class of every object; empty is the
	// store's default.
	StorageClass string
	// StorageClassPacks, when set, overrides StorageClass for packs
	// (e.g. STANDARD_IA or GLACIER_IR); metadata keeps StorageClass.
	// Packs must stay readable without a restore request: do not use
	// GLACIER or DEEP_ARCHIVE.
	StorageClassPacks string

	// SSE is the server-side encryption of new objects: "" (the
	// bucket's default), SSES3 or SSEKMS.
	SSE string
	// SSEKMSKeyID is the KMS key of SSEKMS; empty is the account's
	// default key.
	SSEKMSKeyID string
	// SSECKey, when set, is the 32-byte customer key of SSE-C
	// encryption (BUNKER_S3_SSE_C_KEY, base64). It excludes SSE.
	SSECKey []byte

	// PartSize is the part size of multipart uploads; 0 means
	// DefaultPartSize.
	PartSize int64

	// ObjectLock makes Create create the bucket with Object Lock (and so
	// versioning) enabled, and fail if the bucket exists without it.
	ObjectLock bool
	// ConditionalCreate is CondAuto (default), CondOn or CondOff: whether
	// conditional creates use If-None-Match (see Features).
	ConditionalCreate string

	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_SESSION_TOKEN). Without them the shared credentials file and
	// then the instance's IAM role are tried.
	AccessKeyID, SecretAccessKey, SessionToken string
	// Profile is the profile of the shared credentials file
	// (AWS_PROFILE; default "default").
	Profile string
	// CredentialsFile is the shared credentials file
	// (AWS_SHARED_CREDENTIALS_FILE); empty means the AWS default files
	// (~/.aws/config and ~/.aws/credentials).
	CredentialsFile string

	// MaxRetries is how many attempts minio-go makes per request; 0
	// means DefaultMaxRetries.
	MaxRetries int
	// Transport, when set, carries the HTTP requests (tests count them
	// with it); nil is minio-go's default transport.
	Transport http.RoundTripper
	// Dial, when set, makes every connection of the default transport
	// (a policy's checked dialer), which then uses no proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// NoAmbientCredentials refuses to fall back to the process's own
	// identity (shared credentials file, instance or container role)
	// when no access key is given.
	NoAmbientCredentials bool

	// loc is the location as the user typed it, after "s3:".
	loc string
}

// option is a setting that may come from the location's query or from an
// environment variable.
type option struct {
	query, env string
	set        func(c *Config, v string) error
}

// options are the query parameters of a location and their environment
// variables; the query wins.
var options = []option{
	{"region", "BUNKER_S3_REGION", func(c *Config, v string) error { c.Region = v; return nil }},
	{"bucket-lookup", "BUNKER_S3_BUCKET_LOOKUP", func(c *Config, v string) error {
		c.BucketLookup = strings.ToLower(v)
		return nil
	}},
	{"storage-class", "BUNKER_S3_STORAGE_CLASS", func(c *Config, v string) error { c.StorageClass = v; return nil }},
	{"storage-class-packs", "BUNKER_S3_STORAGE_CLASS_PACKS", func(c *Config, v string) error { c.StorageClassPacks = v; return nil }},
	{"sse", "BUNKER_S3_SSE", func(c *Config, v string) error { c.SSE = v; return nil }},
	{"sse-kms-key-id", "BUNKER_S3_SSE_KMS_KEY_ID", func(c *Config, v string) error { c.SSEKMSKeyID = v; return nil }},
	{"part-size", "BUNKER_S3_PART_SIZE", func(c *Config, v string) error {
		n, err := parseSize(v)
		c.PartSize = n
		return err
	}},
	{"object-lock", "BUNKER_S3_OBJECT_LOCK", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.ObjectLock = b
		return err
	}},
	{"conditional-create", "BUNKER_S3_CONDITIONAL_CREATE", func(c *Config, v string) error {
		switch v = strings.ToLower(v); v {
		case CondAuto, CondOn, CondOff:
			c.ConditionalCreate = v
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want auto, true or false")
		}
		c.ConditionalCreate = strconv.FormatBool(b)
		return nil
	}},
}

// ParseConfig parses a location (the part after "s3:") of the form
// "[http[s]://]host[:port]/bucket[/prefix][?option=value&...]" (https when
// the scheme is left out) and reads the credentials and the options not
// given in the query from getenv.
func ParseConfig(loc string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	raw := loc
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Config{}, fmt.Errorf("s3 location %q: %w", redact(loc), err)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("s3 location %q: credentials do not belong in the location: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", redact(loc))
	}
	cfg := Config{
		Endpoint:        u.Host,
		Insecure:        u.Scheme == "http",
		AccessKeyID:     strings.TrimSpace(getenv("AWS_ACCESS_KEY_ID")),
		SecretAccessKey: strings.TrimSpace(getenv("AWS_SECRET_ACCESS_KEY")),
		SessionToken:    strings.TrimSpace(getenv("AWS_SESSION_TOKEN")),
		Profile:         strings.TrimSpace(getenv("AWS_PROFILE")),
		CredentialsFile: strings.TrimSpace(getenv("AWS_SHARED_CREDENTIALS_FILE")),
		loc:             loc,
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return Config{}, fmt.Errorf("s3 location %q: scheme %q: want http or https", loc, u.Scheme)
	case u.Fragment != "" || strings.Contains(loc, "#"):
		return Config{}, fmt.Errorf("s3 location %q: unexpected fragment", loc)
	case u.Opaque != "":
		return Config{}, fmt.Errorf("s3 location %q: want [http[s]://]host[:port]/bucket[/prefix]", loc)
	}
	path := strings.TrimPrefix(u.Path, "/")
	cfg.Bucket, cfg.Prefix, _ = strings.Cut(path, "/")
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")

	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("s3 location %q: query: %w", loc, err)
	}
	known := map[string]bool{}
	for _, o := range options {
		known[o.query] = true
	}
	for k, vs := range query {
		switch {
		case k == "sse-c-key" || k == "sse-customer-key":
			return Config{}, fmt.Errorf("s3 location: the SSE-C key must not be in the location; set BUNKER_S3_SSE_C_KEY")
		case !known[k]:
			return Config{}, fmt.Errorf("s3 location %q: unknown option %q", loc, k)
		case len(vs) != 1:
			return Config{}, fmt.Errorf("s3 location %q: option %q given %d times", loc, k, len(vs))
		}
	}
	for _, o := range options {
		v, src := strings.TrimSpace(getenv(o.env)), o.env
		if vs, ok := query[o.query]; ok {
			v, src = strings.TrimSpace(vs[0]), "option "+o.query
		}
		if v == "" {
			continue
		}
		if err := o.set(&cfg, v); err != nil {
			return Config{}, fmt.Errorf("s3 location %q: %s=%q: %w", loc, src, v, unwrapNum(err))
		}
	}
	if cfg.Region == "" {
		cfg.Region = strings.TrimSpace(getenv("AWS_REGION"))
	}
	if cfg.Region == "" {
		cfg.Region = strings.TrimSpace(getenv("AWS_DEFAULT_REGION"))
	}
	if k := strings.TrimSpace(getenv("BUNKER_S3_SSE_C_KEY")); k != "" {
		key, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			// Say nothing about the value: it is a secret.
			return Config{}, errors.New("s3: BUNKER_S3_SSE_C_KEY is not valid base64")
		}
		cfg.SSECKey = key
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("s3 location %q: %w", loc, err)
	}
	return cfg, nil
}

// unwrapNum drops strconv's restatement of the input from an error.
func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// redact removes a user:password@ part from a location, for messages.
func redact(loc string) string {
	rest, scheme := loc, ""
	if i := strings.Index(loc, "://"); i >= 0 {
		scheme, rest = loc[:i+3], loc[i+3:]
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	if i := strings.LastIndex(host, "@"); i >= 0 {
		return scheme + "REDACTED@" + rest[i+1:]
	}
	return loc
}

// parseSize parses a byte count with an optional unit: "16777216",
// "16MiB", "16M" (all units are binary), "5GiB".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, errors.New("want a size like 16MiB")
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q: want B, KiB, MiB or GiB", unit)
	}
	if n > (1<<62)>>sh {
		return 0, errors.New("too large")
	}
	return n << sh, nil
}

// Validate checks the config and fills in defaults.
func (c *Config) Validate() error {
	if c.Endpoint == "" {
		return errors.New("no host: want [http[s]://]host[:port]/bucket[/prefix]")
	}
	if strings.ContainsAny(c.Endpoint, "/?#@ ") {
		return fmt.Errorf("invalid host %q", c.Endpoint)
	}
	if c.Bucket == "" {
		return errors.New("no bucket: want [http[s]://]host[:port]/bucket[/prefix]")
	}
	if c.NoAmbientCredentials && (c.AccessKeyID == "" || c.SecretAccessKey == "") {
		return errors.New("no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: this repository must bring its own keys (the process opening it lends no identity of its own: no credentials file, no instance or container role)")
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return fmt.Errorf("bucket %q: %w", c.Bucket, err)
	}
	if c.Prefix != "" {
		for _, seg := range strings.Split(c.Prefix, "/") {
			switch {
			case seg == "":
				return fmt.Errorf("prefix %q: empty path segment", c.Prefix)
			case seg == "." || seg == "..":
				return fmt.Errorf("prefix %q: %q segment", c.Prefix, seg)
			case strings.ContainsFunc(seg, unicode.IsControl):
				return fmt.Errorf("prefix %q: control character", c.Prefix)
			}
		}
	}
	switch c.BucketLookup {
	case "":
		c.BucketLookup = LookupAuto
	case LookupAuto, LookupPath, LookupDNS:
	default:
		return fmt.Errorf("bucket-lookup %q: want auto, path or dns", c.BucketLookup)
	}
	switch c.ConditionalCreate {
	case "":
		c.ConditionalCreate = CondAuto
	case CondAuto, CondOn, CondOff:
	default:
		return fmt.Errorf("conditional-create %q: want auto, true or false", c.ConditionalCreate)
	}
	for _, sc := range []string{c.StorageClass, c.StorageClassPacks} {
		if strings.ContainsFunc(sc, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') }) {
			return fmt.Errorf("storage class %q: want upper-case letters, digits and _ (e.g. STANDARD_IA)", sc)
		}
	}
	switch strings.ToLower(c.SSE) {
	case "":
		if c.SSEKMSKeyID != "" {
			c.SSE = SSEKMS
		}
	case "aes256":
		c.SSE = SSES3
	case "aws:kms", "kms":
		c.SSE = SSEKMS
	default:
		return fmt.Errorf("sse %q: want AES256 or aws:kms", c.SSE)
	}
	if c.SSEKMSKeyID != "" && c.SSE != SSEKMS {
		return fmt.Errorf("sse-kms-key-id needs sse=aws:kms, not %s", c.SSE)
	}
	if c.SSECKey != nil {
		if len(c.SSECKey) != 32 {
			return fmt.Errorf("BUNKER_S3_SSE_C_KEY: want 32 bytes (base64), got %d", len(c.SSECKey))
		}
		if c.SSE != "" {
			return errors.New("BUNKER_S3_SSE_C_KEY excludes sse")
		}
		if c.Insecure {
			return errors.New("SSE-C needs https: the store refuses the key over plain http")
		}
	}
	switch {
	case c.PartSize == 0:
		c.PartSize = DefaultPartSize
	case c.PartSize < MinPartSize || c.PartSize > MaxPartSize:
		return fmt.Errorf("part-size %d: want between 5 MiB and 5 GiB", c.PartSize)
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MaxRetries < 0 {
		return fmt.Errorf("max retries %d: want at least 1", c.MaxRetries)
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		return errors.New("AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return nil
}

// base is the location without options, as error messages name it:
// "s3:https://host/bucket/prefix".
func (c *Config) base() string {
	scheme := "https://"
	if c.Insecure {
		scheme = "http://"
	}
	s := "s3:" + scheme + c.Endpoint + "/" + c.Bucket
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	return s
}

// location is the location as the user typed it, or built from the
// fields for a Config made in code.
func (c *Config) location() string {
	if c.loc != "" {
		return "s3:" + redact(c.loc)
	}
	return c.base()
}

// String describes the config without its secrets.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString(c.location())
	switch {
	case c.AccessKeyID != "":
		fmt.Fprintf(&b, " (access key %s)", c.AccessKeyID)
	case c.Profile != "":
		fmt.Fprintf(&b, " (profile %s)", c.Profile)
	}
	return b.String()
}

// GoString is String, so that %#v does not print the secrets either.
func (c Config) GoString() string { return c.String() }
