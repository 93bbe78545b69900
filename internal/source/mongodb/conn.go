package mongodb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Config says how to reach a server.
type Config struct {
	// URI is a mongodb:// or mongodb+srv:// connection string with any
	// driver option (tls=true, replicaSet=…, authSource=…). It may carry
	// a password; it is never printed with it (see Redacted).
	URI string
	// Password, when PasswordSet, replaces the URI's password; the URI
	// must then name the user.
	Password    string
	PasswordSet bool
	// ServerSelectionTimeout bounds the search for a usable server when
	// the URI does not set serverSelectionTimeoutMS (0: the driver's 30 s).
	ServerSelectionTimeout time.Duration
}

// Topologies a server reports.
const (
	Standalone = "standalone"
	ReplicaSet = "replset"
	Sharded    = "sharded"
)

// redactedPassword replaces secrets in anything printed.
const redactedPassword = "xxxxx"

// secretParams are URI options whose values are secrets.
var secretParams = []string{"tlsCertificateKeyFilePassword", "sslClientCertificateKeyPassword"}

// uriParts is a connection string split without resolving anything.
type uriParts struct {
	scheme  string // "mongodb" or "mongodb+srv"
	user    string // percent-encoded, as written
	pass    string // percent-encoded, as written
	hasPass bool
	hosts   string // comma-separated, as written
	path    string // "/db" or ""
	query   string // without '?'
}

func splitURI(uri string) (uriParts, error) {
	var p uriParts
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || (scheme != "mongodb" && scheme != "mongodb+srv") {
		return p, errors.New(`connection URI must start with "mongodb://" or "mongodb+srv://"`)
	}
	p.scheme = scheme
	// The user information ends at the last '@' before the path. A
	// password with an unescaped '/' or '?' is invalid, but it must still
	// be recognised to be hidden: then take the last '@' of the string
	// when what precedes it looks like "user:password".
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			if c := strings.IndexByte(rest[:i], ':'); c >= 0 && !strings.ContainsAny(rest[:c], "/?") {
				at = i
			}
		}
	}
	if at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		p.user, p.pass, p.hasPass = strings.Cut(userinfo, ":")
	}
	end = strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	p.hosts, rest = rest[:end], rest[end:]
	if p.hosts == "" {
		return p, errors.New("connection URI names no host")
	}
	path, query, _ := strings.Cut(rest, "?")
	p.path, p.query = path, query
	return p, nil
}

// string reassembles the URI: modeRedact replaces the password and the
// secret options by xxxxx, modePublic drops them.
func (p uriParts) string(mode int) string {
	var b strings.Builder
	b.WriteString(p.scheme + "://")
	if p.user != "" || p.hasPass {
		b.WriteString(p.user)
		switch {
		case !p.hasPass || mode == modePublic:
		case mode == modeRedact:
			b.WriteString(":" + redactedPassword)
		default:
			b.WriteString(":" + p.pass)
		}
		b.WriteString("@")
	}
	b.WriteString(p.hosts)
	b.WriteString(p.path)
	q := p.query
	if mode != modeFull {
		q = filterQuery(q, mode == modeRedact)
	}
	if q != "" {
		if p.path == "" {
			b.WriteString("/")
		}
		b.WriteString("?" + q)
	}
	return b.String()
}

const (
	modeFull = iota
	modeRedact
	modePublic
)

// filterQuery replaces (redact) or removes the values of secret options.
func filterQuery(q string, redact bool) string {
	if q == "" {
		return ""
	}
	var out []string
	for _, kv := range strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' }) {
		k, _, _ := strings.Cut(kv, "=")
		if isSecretParam(k) {
			if !redact {
				continue
			}
			kv = k + "=" + redactedPassword
		}
		out = append(out, kv)
	}
	return strings.Join(out, "&")
}

func isSecretParam(k string) bool {
	if uk, err := url.QueryUnescape(k); err == nil {
		k = uk
	}
	for _, s := range secretParams {
		if strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}

// queryValue returns the (unescaped) value of option k.
func (p uriParts) queryValue(k string) (string, bool) {
	for _, kv := range strings.FieldsFunc(p.query, func(r rune) bool { return r == '&' || r == ';' }) {
		key, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(key, k) {
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
			return v, true
		}
	}
	return "", false
}

// Validate checks the URI's shape (the driver checks the rest when it
// connects).
func (c Config) Validate() error {
	if c.URI == "" {
		return errors.New("no MongoDB connection URI: give --uri or set BUNKER_MONGODB_URI")
	}
	p, err := splitURI(c.URI)
	if err != nil {
		return err
	}
	if c.PasswordSet && p.user == "" {
		return errors.New("a password was given but the connection URI names no user (mongodb://USER@host/)")
	}
	return nil
}

// Redacted is the URI with its password and secret options replaced by
// xxxxx: what may be printed.
func (c Config) Redacted() string {
	p, err := splitURI(c.URI)
	if err != nil {
		return "(invalid URI)"
	}
	if c.PasswordSet {
		p.hasPass = true
	}
	return p.string(modeRedact)
}

// Public is the URI without password and secret options: what a tool may
// get on its command line (the secrets go to its configuration file).
func (c Config) Public() string {
	p, err := splitURI(c.URI)
	if err != nil {
		return ""
	}
	return p.string(modePublic)
}

// Hosts are the hosts of the URI as written (for mongodb+srv, the SRV
// name); nothing is resolved.
func (c Config) Hosts() []string {
	p, err := splitURI(c.URI)
	if err != nil {
		return nil
	}
	var hosts []string
	for _, h := range strings.Split(p.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			if uh, err := url.PathUnescape(h); err == nil {
				h = uh
			}
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// password returns the password to use, decoded.
func (c Config) password() (string, bool) {
	if c.PasswordSet {
		return c.Password, true
	}
	p, err := splitURI(c.URI)
	if err != nil || !p.hasPass {
		return "", false
	}
	pw, err := url.PathUnescape(p.pass)
	if err != nil {
		return p.pass, true
	}
	return pw, true
}

// keyPassword is the TLS client key's password given in the URI.
func (c Config) keyPassword() (string, bool) {
	p, err := splitURI(c.URI)
	if err != nil {
		return "", false
	}
	for _, k := range secretParams {
		if v, ok := p.queryValue(k); ok {
			return v, true
		}
	}
	return "", false
}

// secrets are the strings that must never be printed: the password in
// every encoding it may appear in.
func (c Config) secrets() []string {
	var s []string
	add := func(v string) {
		if len(v) >= 3 && !strings.Contains(redactedPassword, v) {
			s = append(s, v, url.PathEscape(v), url.QueryEscape(v))
		}
	}
	if p, err := splitURI(c.URI); err == nil && p.hasPass {
		add(p.pass)
	}
	if pw, ok := c.password(); ok {
		add(pw)
	}
	if kp, ok := c.keyPassword(); ok {
		add(kp)
	}
	return s
}

// scrub removes the URI and the secrets from a message.
func (c Config) scrub(msg string) string {
	if c.URI != "" {
		msg = strings.ReplaceAll(msg, c.URI, c.Redacted())
	}
	for _, s := range c.secrets() {
		msg = strings.ReplaceAll(msg, s, redactedPassword)
	}
	return msg
}

// scrubbedError is an error whose message had its secrets removed. The
// original error stays reachable by errors.Is/As for its kind (context
// cancellation, timeouts) but never by Error.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// wrap scrubs err and prefixes what failed.
func (c Config) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	return &scrubbedError{msg: c.scrub(what + ": " + err.Error()), err: err}
}

// ServerInfo is what Connect learns about the server.
type ServerInfo struct {
	Version  string // buildInfo's version
	Topology string // Standalone, ReplicaSet or Sharded
	SetName  string // of a replica set
	Hosts    []string
}

// Client is a connection to one deployment.
type Client struct {
	cfg  Config
	mc   *mongo.Client
	Info ServerInfo
}

// Connect connects and asks the server who it is, so an unreachable server
// or bad credentials fail here.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	where := strings.Join(cfg.Hosts(), ",")
	opts := options.Client().ApplyURI(cfg.URI)
	if opts.AppName == nil {
		opts.SetAppName("bunker")
	}
	if cfg.PasswordSet {
		if opts.Auth == nil {
			opts.Auth = &options.Credential{}
		}
		opts.Auth.Password, opts.Auth.PasswordSet = cfg.Password, true
	}
	if cfg.ServerSelectionTimeout > 0 && opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(cfg.ServerSelectionTimeout)
	}
	mc, err := mongo.Connect(opts)
	if err != nil {
		return nil, cfg.wrap(err, "connect to MongoDB at %s", where)
	}
	c := &Client{cfg: cfg, mc: mc}
	if err := c.probe(ctx); err != nil {
		cleanup(ctx, func(ctx context.Context) { _ = mc.Disconnect(ctx) })
		return nil, cfg.wrap(err, "connect to MongoDB at %s", where)
	}
	c.Info.Hosts = cfg.Hosts()
	return c, nil
}

func (c *Client) probe(ctx context.Context) error {
	admin := c.mc.Database("admin")
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello)
	if hasCode(err, codeCommandNotFound) {
		err = admin.RunCommand(ctx, bson.D{{Key: "isMaster", Value: 1}}).Decode(&hello)
	}
	if err != nil {
		return err
	}
	switch {
	case hello.Msg == "isdbgrid":
		c.Info.Topology = Sharded
	case hello.SetName != "":
		c.Info.Topology, c.Info.SetName = ReplicaSet, hello.SetName
	default:
		c.Info.Topology = Standalone
	}
	var bi struct {
		Version string `bson:"version"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		return fmt.Errorf("buildInfo: %w", err)
	}
	c.Info.Version = bi.Version
	return nil
}

// Close disconnects.
func (c *Client) Close(ctx context.Context) error {
	return c.mc.Disconnect(ctx)
}

// Config returns the configuration the client was made with.
func (c *Client) Config() Config { return c.cfg }

// cleanupTimeout bounds what is done after a failure (closing cursors,
// disconnecting), so that a dead server does not hold up the error for a
// whole server selection timeout.
const cleanupTimeout = 5 * time.Second

// cleanup runs fn with a context that outlives the cancellation of ctx,
// bounded by cleanupTimeout.
func cleanup(ctx context.Context, fn func(ctx context.Context)) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	fn(c)
}

// closeCursor closes a cursor, also after ctx was canceled.
func closeCursor(ctx context.Context, cur *mongo.Cursor) {
	cleanup(ctx, func(ctx context.Context) { _ = cur.Close(ctx) })
}

// Server error codes the package tells apart.
const (
	codeUnauthorized      = 13
	codeNamespaceNotFound = 26
	codeNamespaceExists   = 48
	codeCommandNotFound   = 59
)

func hasCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}
