package sftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultPort is the SSH port used when the location names none.
	DefaultPort = 22
	// DefaultConnections is the number of SSH connections used when
	// BUNKER_SFTP_CONNECTIONS is not set.
	DefaultConnections = 2
	// MaxConnections bounds Config.Connections.
	MaxConnections = 16
	// DefaultConnectTimeout bounds connecting, the SSH handshake and
	// starting the SFTP session.
	DefaultConnectTimeout = 30 * time.Second
)

// Config holds everything needed to reach the store; parsed from the part of the
// location URL after "sftp:" plus environment variables. See the package
// documentation for the location forms and variables.
type Config struct {
	// Dial, when set, makes every connection (a policy's checked
	// dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// User is the login name.
	User string
	// Host is the server's host name or IP address (IPv6 without
	// brackets).
	Host string
	// Port is the server's SSH port.
	Port int
	// Path is the repository directory on the server: absolute, or
	// relative to the login directory.
	Path string

	// KeyFile is a private key file that must be used (BUNKER_SFTP_KEY).
	KeyFile string
	// DefaultKeyFiles are private key files used when they exist, if
	// KeyFile is empty (~/.ssh/id_ed25519, id_ecdsa, id_rsa).
	DefaultKeyFiles []string
	// KeyPassphrase decrypts encrypted key files
	// (BUNKER_SFTP_KEY_PASSPHRASE). It is a secret: String leaves it
	// out and no error message contains it.
	KeyPassphrase string
	// AgentSocket is the ssh-agent socket (SSH_AUTH_SOCK); its keys are
	// tried before the key files.
	AgentSocket string
	// KnownHostsFiles are the known_hosts files host keys are checked
	// against; missing files count as empty. The first one is the file
	// error messages tell the user to add keys to.
	KnownHostsFiles []string

	// Connections is how many SSH connections the backend opens (lazily)
	// and spreads requests over; the server handles the requests of one
	// connection one after the other, including every fsync.
	Connections int
	// ConnectTimeout bounds connecting, the SSH handshake and starting
	// the SFTP session; zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration

	// loc is the location as the user typed it (without "sftp:").
	loc string
}

// String describes the configuration without secrets.
func (c Config) String() string {
	pass := ""
	if c.KeyPassphrase != "" {
		pass = " (key passphrase set)"
	}
	return fmt.Sprintf("sftp config %s key=%q default-keys=%q agent=%q known-hosts=%q connections=%d%s",
		c.Location(), c.KeyFile, c.DefaultKeyFiles, c.AgentSocket, c.KnownHostsFiles, c.Connections, pass)
}

// GoString is String, so that %#v does not print the passphrase either.
func (c Config) GoString() string { return c.String() }

// Location returns the location as the user typed it, or, for a Config
// not made by ParseConfig, its canonical form.
func (c Config) Location() string {
	if c.loc != "" {
		return "sftp:" + c.loc
	}
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if c.Port != 0 && c.Port != DefaultPort {
		p := c.Path
		if !strings.HasPrefix(p, "/") {
			p = "/~/" + p
		}
		return fmt.Sprintf("sftp://%s@%s:%d%s", c.User, host, c.Port, p)
	}
	return fmt.Sprintf("sftp:%s@%s:%s", c.User, host, c.Path)
}

// addr is host:port for dialing.
func (c Config) addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// Validate checks that the configuration is complete and sane. Zero
// Connections and ConnectTimeout are valid (they mean the defaults).
func (c Config) Validate() error {
	var errs []error
	if c.User == "" {
		errs = append(errs, errors.New("no user name (and $USER is not set)"))
	}
	if err := checkHost(c.Host); err != nil {
		errs = append(errs, err)
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", c.Port))
	}
	if c.Path == "" {
		errs = append(errs, errors.New("no repository path"))
	}
	if strings.ContainsRune(c.Path, 0) {
		errs = append(errs, errors.New("repository path contains a NUL byte"))
	}
	if len(c.KnownHostsFiles) == 0 {
		errs = append(errs, errors.New("no known_hosts file (set BUNKER_SFTP_KNOWN_HOSTS or $HOME)"))
	}
	if c.Connections < 0 || c.Connections > MaxConnections {
		errs = append(errs, fmt.Errorf("connections %d out of range 1..%d", c.Connections, MaxConnections))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative connect timeout %v", c.ConnectTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid sftp configuration for %s: %w", c.Location(), err)
	}
	return nil
}

func checkHost(host string) error {
	if host == "" {
		return errors.New("no host")
	}
	if strings.ContainsAny(host, "/@[] \t\r\n\x00") {
		return fmt.Errorf("invalid host %q", host)
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return fmt.Errorf("invalid host %q", host)
	}
	return nil
}

// ParseConfig parses a location (without the "sftp:" prefix) in one of the
// forms
//
//	[user@]host:/absolute/path
//	[user@]host:relative/path      (relative to the login directory)
//	[user@][::1]:/path
//	//[user@]host[:port]/absolute/path
//	//[user@]host[:port]/~/relative/path
//
// and reads the environment variables the package documentation lists
// through getenv. It does not touch the file system or the network.
func ParseConfig(loc string, getenv func(string) string) (Config, error) {
	var (
		cfg Config
		err error
	)
	if strings.HasPrefix(loc, "//") {
		cfg, err = parseURL(loc)
	} else {
		cfg, err = parseSCP(loc)
	}
	if err != nil {
		return Config{}, fmt.Errorf("invalid sftp location %q: %w", "sftp:"+loc, err)
	}
	cfg.loc = loc
	if cfg.User == "" {
		cfg.User = getenv("USER")
	}
	home := getenv("HOME")
	if k := getenv("BUNKER_SFTP_KEY"); k != "" {
		cfg.KeyFile = expandHome(k, home)
	} else if home != "" {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			cfg.DefaultKeyFiles = append(cfg.DefaultKeyFiles, path.Join(home, ".ssh", name))
		}
	}
	cfg.KeyPassphrase = getenv("BUNKER_SFTP_KEY_PASSPHRASE")
	cfg.AgentSocket = getenv("SSH_AUTH_SOCK")
	if kh := getenv("BUNKER_SFTP_KNOWN_HOSTS"); kh != "" {
		cfg.KnownHostsFiles = []string{expandHome(kh, home)}
	} else if home != "" {
		cfg.KnownHostsFiles = []string{path.Join(home, ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"}
	}
	cfg.Connections = DefaultConnections
	if s := getenv("BUNKER_SFTP_CONNECTIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxConnections {
			return Config{}, fmt.Errorf("invalid BUNKER_SFTP_CONNECTIONS=%q: want a number from 1 to %d", s, MaxConnections)
		}
		cfg.Connections = n
	}
	cfg.ConnectTimeout = DefaultConnectTimeout
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseURL parses "//[user@]host[:port]/path".
func parseURL(loc string) (Config, error) {
	u, err := url.Parse("sftp:" + loc)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Config{}, err
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(loc, "?") || strings.Contains(loc, "#") {
		return Config{}, errors.New("query and fragment are not supported")
	}
	cfg := Config{Host: u.Hostname(), Port: DefaultPort}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return Config{}, errors.New("passwords are not supported; use a key or ssh-agent")
		}
		cfg.User = u.User.Username()
		if cfg.User == "" {
			return Config{}, errors.New("empty user name")
		}
	}
	if err := checkHost(cfg.Host); err != nil {
		return Config{}, err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Config{}, fmt.Errorf("invalid port %q", p)
		}
		cfg.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return Config{}, errors.New("empty port")
	}
	switch p := u.Path; {
	case p == "" || p == "/":
		return Config{}, errors.New("no repository path")
	case p == "/~" || p == "/~/":
		return Config{}, errors.New("the repository cannot be the login directory itself")
	case strings.HasPrefix(p, "/~/"):
		cfg.Path = path.Clean(p[len("/~/"):])
	case strings.HasPrefix(p, "/~"):
		return Config{}, errors.New("~user paths are not supported")
	default:
		cfg.Path = path.Clean(p)
	}
	return cfg, nil
}

// parseSCP parses "[user@]host:path" and "[user@][v6addr]:path".
func parseSCP(loc string) (Config, error) {
	// The host ends at the first colon outside brackets.
	colon, depth := -1, 0
	for i := 0; i < len(loc) && colon < 0; i++ {
		switch loc[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				colon = i
			}
		case '/':
			if depth == 0 {
				return Config{}, errors.New(`want [user@]host:path or //[user@]host[:port]/path`)
			}
		}
	}
	if colon < 0 {
		return Config{}, errors.New(`no ":" after the host; want [user@]host:path or //[user@]host[:port]/path`)
	}
	hostPart, p := loc[:colon], loc[colon+1:]
	if first, _, _ := strings.Cut(p, "/"); !strings.Contains(hostPart, "@") && strings.Contains(first, "@") && strings.Contains(first, ":") {
		return Config{}, errors.New("this looks like user:password@host:path; passwords are not supported, use a key or ssh-agent")
	}
	cfg := Config{Port: DefaultPort}
	if at := strings.LastIndex(hostPart, "@"); at >= 0 {
		cfg.User = hostPart[:at]
		hostPart = hostPart[at+1:]
		if cfg.User == "" {
			return Config{}, errors.New("empty user name")
		}
		if strings.ContainsAny(cfg.User, ":[]/") {
			return Config{}, fmt.Errorf("invalid user name %q (passwords are not supported)", cfg.User)
		}
	}
	if strings.HasPrefix(hostPart, "[") {
		if !strings.HasSuffix(hostPart, "]") {
			return Config{}, fmt.Errorf("invalid host %q", hostPart)
		}
		hostPart = hostPart[1 : len(hostPart)-1]
		if net.ParseIP(hostPart) == nil {
			return Config{}, fmt.Errorf("invalid IP address %q in brackets", hostPart)
		}
	}
	if err := checkHost(hostPart); err != nil {
		return Config{}, err
	}
	cfg.Host = hostPart
	switch {
	case p == "":
		return Config{}, errors.New("no repository path after the colon")
	case p == "~" || p == "~/":
		return Config{}, errors.New("the repository cannot be the login directory itself")
	case strings.HasPrefix(p, "~/"):
		p = p[2:]
	case strings.HasPrefix(p, "~"):
		return Config{}, errors.New("~user paths are not supported")
	}
	cfg.Path = path.Clean(p)
	if cfg.Path == "." {
		return Config{}, errors.New("the repository cannot be the login directory itself")
	}
	return cfg, nil
}

// expandHome replaces a leading "~/" with home.
func expandHome(p, home string) string {
	if home != "" && strings.HasPrefix(p, "~/") {
		return path.Join(home, p[2:])
	}
	return p
}
