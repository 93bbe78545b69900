package azure

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// Defaults of the tunables in Config.
const (
	// DefaultBlockSize is the block size of staged (multi-block) uploads.
	DefaultBlockSize = 8 << 20
	// DefaultSingleUploadMax is the largest object sent in one Put Blob
	// request; larger ones are staged in blocks.
	DefaultSingleUploadMax = 32 << 20
	// DefaultUploadConcurrency is how many blocks of one object are
	// uploaded at a time.
	DefaultUploadConcurrency = 4
	// DefaultMaxRetries is how often the SDK retries a failed request
	// itself. It is low on purpose: the storage retry decorator above the
	// backend decides about retries.
	DefaultMaxRetries = 1
)

// Config holds everything needed to reach the store; parsed from the part of the
// location URL after "azure:" plus environment variables.
//
// Exactly one way of authenticating is set: ConnectionString, or Account
// with Key (shared key) or SASToken.
type Config struct {
	// Dial, when set, makes every connection (a policy's checked
	// dialer); the backend then uses no proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Container is the blob container holding the repository.
	Container string
	// Prefix is the blob name prefix of the repository, without leading
	// or trailing slashes; empty for the root of the container.
	Prefix string

	// Account is the storage account name (AZURE_STORAGE_ACCOUNT).
	Account string
	// Key is the base64 shared key of the account (AZURE_STORAGE_KEY).
	Key string
	// SASToken is a shared access signature, the query string without
	// the leading "?" (AZURE_STORAGE_SAS_TOKEN).
	SASToken string
	// ConnectionString is a storage connection string
	// (AZURE_STORAGE_CONNECTION_STRING). It names account, credentials
	// and endpoint itself.
	ConnectionString string
	// Endpoint is the blob service URL (AZURE_STORAGE_ENDPOINT or
	// BUNKER_AZURE_ENDPOINT); default https://<Account>.blob.core.windows.net/.
	Endpoint string

	// AccessTierPacks, when set, is the access tier packs are written
	// with (BUNKER_AZURE_ACCESS_TIER_PACKS): Hot, Cool or Cold. Other
	// objects keep the account's default tier.
	AccessTierPacks blob.AccessTier

	// BlockSize is the block size of staged uploads; 0 means
	// DefaultBlockSize.
	BlockSize int64
	// SingleUploadMax is the largest object sent in a single request;
	// 0 means DefaultSingleUploadMax. At most 256 MiB.
	SingleUploadMax int64
	// UploadConcurrency is how many blocks of one object are uploaded at
	// a time; 0 means DefaultUploadConcurrency.
	UploadConcurrency int
	// MaxRetries is how often the SDK retries a request; 0 means
	// DefaultMaxRetries, negative means never.
	MaxRetries int32
	// RetryDelay is the SDK's first delay between retries; 0 means 200 ms.
	RetryDelay time.Duration

	// loc is the location as the user typed it, after "azure:".
	loc string
}

// ParseConfig parses a location of the form "container:/prefix" (the part
// after "azure:"; the prefix is optional, "container" alone is the root of
// the container) and reads the credentials and options from getenv.
func ParseConfig(loc string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	container, prefix, _ := strings.Cut(loc, ":")
	if err := validContainer(container); err != nil {
		return Config{}, fmt.Errorf("azure location %q: %w", loc, err)
	}
	prefix, err := cleanPrefix(prefix)
	if err != nil {
		return Config{}, fmt.Errorf("azure location %q: %w", loc, err)
	}
	cfg := Config{
		Container:        container,
		Prefix:           prefix,
		Account:          strings.TrimSpace(getenv("AZURE_STORAGE_ACCOUNT")),
		Key:              strings.TrimSpace(getenv("AZURE_STORAGE_KEY")),
		SASToken:         strings.TrimPrefix(strings.TrimSpace(getenv("AZURE_STORAGE_SAS_TOKEN")), "?"),
		ConnectionString: strings.TrimSpace(getenv("AZURE_STORAGE_CONNECTION_STRING")),
		Endpoint:         strings.TrimSpace(getenv("BUNKER_AZURE_ENDPOINT")),
		loc:              loc,
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = strings.TrimSpace(getenv("AZURE_STORAGE_ENDPOINT"))
	}
	if tier := strings.TrimSpace(getenv("BUNKER_AZURE_ACCESS_TIER_PACKS")); tier != "" {
		t, err := parseTier(tier)
		if err != nil {
			return Config{}, fmt.Errorf("azure: BUNKER_AZURE_ACCESS_TIER_PACKS: %w", err)
		}
		cfg.AccessTierPacks = t
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the config and fills in the default endpoint.
func (c *Config) Validate() error {
	if err := validContainer(c.Container); err != nil {
		return fmt.Errorf("azure: %w", err)
	}
	p, err := cleanPrefix(c.Prefix)
	if err != nil {
		return fmt.Errorf("azure: %w", err)
	}
	c.Prefix = p
	if c.ConnectionString != "" {
		if c.Key != "" || c.SASToken != "" {
			return errors.New("azure: set either AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY/AZURE_STORAGE_SAS_TOKEN, not both")
		}
		if c.Endpoint != "" {
			return errors.New("azure: AZURE_STORAGE_CONNECTION_STRING names the endpoint itself; do not set AZURE_STORAGE_ENDPOINT or BUNKER_AZURE_ENDPOINT with it")
		}
	} else {
		switch {
		case c.Account == "":
			return errors.New("azure: AZURE_STORAGE_ACCOUNT is not set (or use AZURE_STORAGE_CONNECTION_STRING)")
		case c.Key != "" && c.SASToken != "":
			return errors.New("azure: set either AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, not both")
		case c.Key == "" && c.SASToken == "":
			return errors.New("azure: no credentials: set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING (Azure AD / managed identity is not supported)")
		}
		if !validAccount(c.Account) {
			return fmt.Errorf("azure: invalid account name %q: want 3-24 lowercase letters and digits", c.Account)
		}
		if c.Key != "" {
			if _, err := base64.StdEncoding.DecodeString(c.Key); err != nil {
				return errors.New("azure: AZURE_STORAGE_KEY is not valid base64")
			}
		}
		if c.SASToken != "" {
			q, err := url.ParseQuery(c.SASToken)
			if err != nil || q.Get("sig") == "" {
				return errors.New("azure: AZURE_STORAGE_SAS_TOKEN is not a SAS token (a query string with sig=...)")
			}
		}
		if c.Endpoint == "" {
			c.Endpoint = "https://" + c.Account + ".blob.core.windows.net/"
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("azure: invalid endpoint %q: want http(s)://host[:port][/path]", c.Endpoint)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("azure: invalid endpoint %q: no query, fragment or user info (put a SAS token in AZURE_STORAGE_SAS_TOKEN)", redactURL(c.Endpoint))
		}
	}
	if c.AccessTierPacks != "" {
		if _, err := parseTier(string(c.AccessTierPacks)); err != nil {
			return fmt.Errorf("azure: access tier for packs: %w", err)
		}
	}
	switch {
	case c.BlockSize < 0:
		return fmt.Errorf("azure: negative block size %d", c.BlockSize)
	case c.SingleUploadMax < 0 || c.SingleUploadMax > 256<<20:
		return fmt.Errorf("azure: single upload limit %d is not within 0..256 MiB", c.SingleUploadMax)
	case c.UploadConcurrency < 0:
		return fmt.Errorf("azure: negative upload concurrency %d", c.UploadConcurrency)
	case c.RetryDelay < 0:
		return fmt.Errorf("azure: negative retry delay %v", c.RetryDelay)
	}
	return nil
}

// location is the location string of the config: "azure:container:/prefix".
func (c Config) location() string {
	if c.loc != "" {
		return "azure:" + c.loc
	}
	if c.Prefix == "" {
		return "azure:" + c.Container
	}
	return "azure:" + c.Container + ":/" + c.Prefix
}

// String describes the config without its secrets.
func (c Config) String() string {
	var auth string
	switch {
	case c.ConnectionString != "":
		auth = "connection string"
	case c.Key != "":
		auth = "shared key"
	case c.SASToken != "":
		auth = "SAS token"
	default:
		auth = "none"
	}
	return fmt.Sprintf("%s (account %q, endpoint %s, auth %s)", c.location(), c.Account, c.Endpoint, auth)
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// validContainer checks Azure's container naming rules: 3-63 characters,
// lowercase letters, digits and single hyphens, starting and ending with a
// letter or digit.
func validContainer(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("invalid container name %q: want 3-63 characters", name)
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1 && name[i-1] != '-':
		default:
			return fmt.Errorf("invalid container name %q: want lowercase letters, digits and single hyphens, starting and ending with a letter or digit", name)
		}
	}
	return nil
}

// validAccount checks Azure's storage account naming rules.
func validAccount(name string) bool {
	if len(name) < 3 || len(name) > 24 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// cleanPrefix is objstore.CleanPrefix, which also rejects backslashes:
// Azure tools read them as slashes.
func cleanPrefix(p string) (string, error) {
	p, err := objstore.CleanPrefix(p)
	if err == nil && strings.ContainsRune(p, '\\') {
		return "", fmt.Errorf("invalid prefix %q: backslash", p)
	}
	return p, err
}

// parseTier accepts the online access tiers, case-insensitively.
func parseTier(s string) (blob.AccessTier, error) {
	for _, t := range []blob.AccessTier{blob.AccessTierHot, blob.AccessTierCool, blob.AccessTierCold} {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	if strings.EqualFold(s, string(blob.AccessTierArchive)) {
		return "", errors.New("the Archive tier is not supported: archived packs cannot be read without rehydration")
	}
	return "", fmt.Errorf("unknown access tier %q: want Hot, Cool or Cold", s)
}

// redactURL drops the query (which may hold a SAS token) and user info of
// a URL for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}
