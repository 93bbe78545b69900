package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

// Conn says how to reach a server and as whom.
type Conn struct {
	User     string // default: the current OS user, as the mariadb client does
	Password string // never printed, logged or put on a command line
	Host     string // TCP host; "localhost" without a port means the default socket
	Port     int    // default 3306
	Socket   string // Unix socket path; wins over Host and Port
	// TLS is "" (the tools' defaults; the driver uses none), "false",
	// "true" (encrypt and verify the server's certificate), "skip-verify"
	// (encrypt, do not verify) or "preferred" (encrypt when the server can).
	// Any of the SSL files implies "true" when TLS is "".
	TLS                    string
	SSLCA, SSLCert, SSLKey string
}

// DefaultSockets are where the Unix socket of a local server is looked for
// when the connection names neither a host nor a socket.
var DefaultSockets = []string{"/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock", "/tmp/mysql.sock"}

// DefaultPort is the port of a server when none is given.
const DefaultPort = 3306

var dsnParams = []string{"socket", "tls", "ssl-ca", "ssl-cert", "ssl-key"}

// ParseDSN reads a connection URL:
//
//	mysql://USER:PASSWORD@HOST:PORT/?socket=/run/mysqld/mysqld.sock&tls=true&ssl-ca=/etc/ca.pem
//
// (mariadb:// works too). Every part is optional; user and password are
// percent-encoded. Errors never repeat the password.
func ParseDSN(s string) (Conn, error) {
	var c Conn
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // ue.URL would repeat the password
		}
		return c, fmt.Errorf("invalid MySQL DSN: %v (want mysql://user:password@host:port/?socket=PATH)", err)
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return c, errors.New("invalid MySQL DSN: it must start with mysql:// (mysql://user:password@host:port/?socket=PATH)")
	}
	if u.Opaque != "" || u.Fragment != "" {
		return c, errors.New("invalid MySQL DSN: want mysql://user:password@host:port/?socket=PATH")
	}
	if u.Path != "" && u.Path != "/" {
		return c, errors.New("invalid MySQL DSN: it names no database (give databases with --database)")
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return Conn{}, fmt.Errorf("invalid MySQL DSN: port %q", p)
		}
		c.Port = n
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Conn{}, fmt.Errorf("invalid MySQL DSN parameters: %v", err)
	}
	for k, v := range q {
		if !slices.Contains(dsnParams, k) {
			return Conn{}, fmt.Errorf("invalid MySQL DSN: unknown parameter %q (known: %s)", k, strings.Join(dsnParams, ", "))
		}
		if len(v) != 1 {
			return Conn{}, fmt.Errorf("invalid MySQL DSN: parameter %q given %d times", k, len(v))
		}
		switch k {
		case "socket":
			c.Socket = v[0]
		case "tls":
			c.TLS = v[0]
		case "ssl-ca":
			c.SSLCA = v[0]
		case "ssl-cert":
			c.SSLCert = v[0]
		case "ssl-key":
			c.SSLKey = v[0]
		}
	}
	return c, c.Validate()
}

// Validate checks the settings.
func (c Conn) Validate() error {
	switch c.TLS {
	case "", "false", "true", "skip-verify", "preferred":
	default:
		return fmt.Errorf("tls=%q: want true, false, skip-verify or preferred", c.TLS)
	}
	if (c.SSLCert == "") != (c.SSLKey == "") {
		return errors.New("ssl-cert and ssl-key go together")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d is out of range", c.Port)
	}
	for _, s := range []string{c.User, c.Password, c.Host, c.Socket, c.SSLCA, c.SSLCert, c.SSLKey} {
		if strings.ContainsRune(s, 0) {
			return errors.New("connection settings must not contain NUL characters")
		}
	}
	if strings.ContainsAny(c.Host, "/?#@[] \t\r\n") {
		return fmt.Errorf("host %q is not a host name or address", c.Host)
	}
	if strings.Contains(c.Host, ":") {
		if a, err := netip.ParseAddr(c.Host); err != nil || !a.Is6() {
			return fmt.Errorf("host %q is not a host name or address", c.Host)
		}
	}
	if c.Socket != "" && !filepath.IsAbs(c.Socket) {
		return fmt.Errorf("socket %q: want an absolute path", c.Socket)
	}
	return nil
}

// WithDefaults fills in what was left out: the current OS user, the
// default socket of a local server (or 127.0.0.1 when there is none), and
// port 3306.
func (c Conn) WithDefaults() Conn {
	if c.User == "" {
		if u, err := user.Current(); err == nil {
			c.User = u.Username
		}
	}
	if c.Socket == "" && (c.Host == "" || c.Host == "localhost" && c.Port == 0) {
		for _, s := range DefaultSockets {
			if fi, err := os.Stat(s); err == nil && fi.Mode()&os.ModeSocket != 0 {
				c.Socket = s
				break
			}
		}
		if c.Socket == "" && c.Host == "" {
			c.Host = "127.0.0.1"
		}
	}
	if c.Socket == "" && c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.TLS == "" && (c.SSLCA != "" || c.SSLCert != "") {
		c.TLS = "true"
	}
	return c
}

// Server names the server: the socket path, or host:port.
func (c Conn) Server() string {
	if c.Socket != "" {
		return c.Socket
	}
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// String is the connection as a URL without the password.
func (c Conn) String() string {
	u := url.URL{Scheme: "mysql", Path: "/"}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	if c.Host != "" || c.Port != 0 {
		u.Host = c.Host
		if strings.Contains(c.Host, ":") {
			u.Host = "[" + c.Host + "]"
		}
		if c.Port != 0 {
			u.Host = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
		}
	}
	q := url.Values{}
	for k, v := range map[string]string{"socket": c.Socket, "tls": c.TLS, "ssl-ca": c.SSLCA, "ssl-cert": c.SSLCert, "ssl-key": c.SSLKey} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// redact removes the password from a message (when it is long enough
// that replacing it cannot garble the message).
func (c Conn) redact(err error) error {
	if err == nil || len(c.Password) < 4 || !strings.Contains(err.Error(), c.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.Password, "***"))
}

// optionsFile is the content of the option file the tools get as
// --defaults-extra-file: the [client] group with the connection settings.
// mariadbTool chooses MariaDB's TLS option names over MySQL's.
func (c Conn) optionsFile(mariadbTool bool) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Written by bunker for one tool run and removed after it.\n[client]\n")
	opt := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, optionValue(v)) }
	flag := func(k string) { b.WriteString(k + "\n") }
	if c.User != "" {
		opt("user", c.User)
	}
	if c.Password != "" {
		opt("password", c.Password)
	}
	if c.Socket != "" {
		opt("socket", c.Socket)
		opt("protocol", "SOCKET")
	} else {
		opt("host", c.Host)
		port := c.Port
		if port == 0 {
			port = DefaultPort
		}
		opt("port", strconv.Itoa(port))
		opt("protocol", "TCP")
	}
	tlsMode := c.TLS
	if tlsMode == "" && (c.SSLCA != "" || c.SSLCert != "") {
		tlsMode = "true"
	}
	if mariadbTool {
		switch tlsMode {
		case "false":
			flag("skip-ssl")
		case "true":
			flag("ssl")
			flag("ssl-verify-server-cert")
		case "skip-verify", "preferred":
			flag("ssl")
		}
	} else {
		switch tlsMode {
		case "false":
			opt("ssl-mode", "DISABLED")
		case "true":
			opt("ssl-mode", "VERIFY_IDENTITY")
		case "skip-verify":
			opt("ssl-mode", "REQUIRED")
		case "preferred":
			opt("ssl-mode", "PREFERRED")
		}
	}
	if c.SSLCA != "" {
		opt("ssl-ca", c.SSLCA)
	}
	if c.SSLCert != "" {
		opt("ssl-cert", c.SSLCert)
		opt("ssl-key", c.SSLKey)
	}
	return []byte(b.String()), nil
}

// optionValue quotes a value for an option file: double quotes, with the
// escapes the option file reader undoes (\\ \" \n \r \t \b). Inside quotes
// '#' does not start a comment and spaces are kept.
func optionValue(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeOptionsFile writes the option file into dir (the system's temporary
// directory when "") with mode 0600 and returns its path.
func (c Conn) writeOptionsFile(dir string, mariadbTool bool) (string, error) {
	b, err := c.optionsFile(mariadbTool)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "bunker-mysql-*.cnf") // 0600
	if err != nil {
		return "", fmt.Errorf("option file for the MySQL tools: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("option file for the MySQL tools: %w", err)
	}
	return f.Name(), nil
}

// nopLogger silences the driver, which logs to the standard logger.
type nopLogger struct{}

func (nopLogger) Print(...any) {}

// tlsConfig is the driver's TLS configuration, nil for none.
func (c Conn) tlsConfig() (*tls.Config, bool, error) {
	switch c.TLS {
	case "", "false":
		return nil, false, nil
	}
	cfg := &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
	if c.SSLCA != "" {
		pem, err := os.ReadFile(c.SSLCA)
		if err != nil {
			return nil, false, fmt.Errorf("ssl-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("ssl-ca %s holds no PEM certificate", c.SSLCA)
		}
		cfg.RootCAs = pool
	}
	if c.SSLCert != "" {
		cert, err := tls.LoadX509KeyPair(c.SSLCert, c.SSLKey)
		if err != nil {
			return nil, false, fmt.Errorf("ssl-cert/ssl-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	fallback := false
	switch c.TLS {
	case "skip-verify":
		cfg.InsecureSkipVerify = true
	case "preferred":
		cfg.InsecureSkipVerify = true
		fallback = true
	}
	return cfg, fallback, nil
}

// openDB connects the driver and checks the connection.
func (c Conn) openDB(ctx context.Context) (*sql.DB, error) {
	cfg := driver.NewConfig()
	cfg.User, cfg.Passwd = c.User, c.Password
	if c.Socket != "" {
		cfg.Net, cfg.Addr = "unix", c.Socket
	} else {
		cfg.Net, cfg.Addr = "tcp", c.Server()
	}
	cfg.Timeout = 10 * time.Second
	cfg.Logger = nopLogger{}
	var err error
	if cfg.TLS, cfg.AllowFallbackToPlaintext, err = c.tlsConfig(); err != nil {
		return nil, err
	}
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, c.redact(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s as %s: %w", c.Server(), c.User, c.redact(err))
	}
	return db, nil
}
