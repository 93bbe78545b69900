package postgres

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// ConnInfo is a parsed libpq connection string: keyword → value, in
// either of libpq's forms ("host=h port=5432" or
// "postgresql://user:pw@h:5432/db?sslmode=require").
type ConnInfo map[string]string

// ParseConnInfo parses a libpq connection string or URI. An empty string
// is an empty ConnInfo: libpq's defaults and PG* variables apply.
func ParseConnInfo(s string) (ConnInfo, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://") {
		return parseURI(s)
	}
	return parseKeywords(s)
}

func parseURI(s string) (ConnInfo, error) {
	// url.Parse rejects a comma-separated host list; take the authority
	// apart by hand, the rest with net/url.
	rest := s[strings.Index(s, "://")+3:]
	ci := ConnInfo{}
	auth, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		auth, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		userinfo := auth[:i]
		auth = auth[i+1:]
		u, p, hasPw := strings.Cut(userinfo, ":")
		var err error
		if ci["user"], err = url.PathUnescape(u); err != nil {
			return nil, fmt.Errorf("connection URI: user: %w", err)
		}
		if hasPw {
			if ci["password"], err = url.PathUnescape(p); err != nil {
				return nil, fmt.Errorf("connection URI: password is not valid percent-encoding")
			}
		}
		if ci["user"] == "" {
			delete(ci, "user")
		}
	}
	if auth != "" {
		var hosts, ports []string
		for _, hp := range strings.Split(auth, ",") {
			h, p := hp, ""
			if strings.HasPrefix(hp, "[") {
				end := strings.IndexByte(hp, ']')
				if end < 0 {
					return nil, fmt.Errorf("connection URI: unterminated [ in host %q", hp)
				}
				h, p = hp[1:end], strings.TrimPrefix(hp[end+1:], ":")
			} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
				h, p = hp[:i], hp[i+1:]
			}
			h, err := url.PathUnescape(h)
			if err != nil {
				return nil, fmt.Errorf("connection URI: host %q: %w", hp, err)
			}
			hosts, ports = append(hosts, h), append(ports, p)
		}
		ci["host"] = strings.Join(hosts, ",")
		if strings.Join(ports, "") != "" {
			ci["port"] = strings.Join(ports, ",")
		}
	}
	path, query, _ := strings.Cut(tail, "?")
	if db := strings.TrimPrefix(path, "/"); db != "" {
		db, err := url.PathUnescape(db)
		if err != nil {
			return nil, fmt.Errorf("connection URI: database: %w", err)
		}
		ci["dbname"] = db
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("connection URI: parameters: %w", err)
		}
		for k, v := range q {
			ci[k] = v[len(v)-1]
		}
	}
	return ci, nil
}

func parseKeywords(s string) (ConnInfo, error) {
	ci := ConnInfo{}
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return ci, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skip()
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("connection string: missing \"=\" after %q", key)
		}
		if key == "" {
			return nil, fmt.Errorf("connection string: empty keyword at offset %d", start)
		}
		i++
		skip()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' && i < len(s) {
					val.WriteByte(s[i])
					i++
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("connection string: unterminated quoted value for %q", key)
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		ci[key] = val.String()
	}
}

// isSpace is C's isspace, as libpq uses it.
func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// String is the keyword form, sorted, with every value quoted; it
// includes the password when there is one.
func (ci ConnInfo) String() string {
	keys := make([]string, 0, len(ci))
	for k := range ci {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(ci[k]))
		b.WriteByte('\'')
	}
	return b.String()
}

// With returns a copy with key set to value ("" removes it).
func (ci ConnInfo) With(key, value string) ConnInfo {
	c := make(ConnInfo, len(ci)+1)
	for k, v := range ci {
		c[k] = v
	}
	if value == "" {
		delete(c, key)
	} else {
		c[key] = value
	}
	return c
}

// SecretKeys are the libpq keywords whose values are secrets: the
// password, the passphrase of the client key (sslpassword) and, from
// PostgreSQL 18, the OAuth client secret.
var SecretKeys = []string{"password", "sslpassword", "oauth_client_secret"}

// WithoutSecrets returns a copy without SecretKeys.
func (ci ConnInfo) WithoutSecrets() ConnInfo {
	c := ci.With("password", "")
	for _, k := range SecretKeys {
		delete(c, k)
	}
	return c
}

// Public is the connection string without any secret: what may appear
// on a command line or in a message.
func (ci ConnInfo) Public() string { return ci.WithoutSecrets().String() }

// Server names the server for snapshot paths and messages: host:port
// (or the socket directory), never credentials.
func (ci ConnInfo) Server(env func(string) string) string {
	host, port := ci["host"], ci["port"]
	if host == "" {
		host = env("PGHOST")
	}
	if port == "" {
		port = env("PGPORT")
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "5432"
	}
	return host + ":" + port
}
