package redact

import (
	"net/url"
	"strings"
)

// secretQueryKeys are query parameter names (lowercase substrings) whose
// values URL forms put secrets in: DSN passwords, SAS signatures, tokens.
var secretQueryKeys = []string{"password", "passwd", "pwd", "secret", "token", "sig", "key", "credential"}

// URLs replaces the user information (user:password@) and secret query
// values of every URL embedded in s — "rest:https://u:p@host/",
// "--repo=postgres://u:p@h/db?password=x" — with Mask.
//
// User information is found the way net/url finds it: everything up to
// the LAST '@' of the authority, so a password holding '@' is hidden
// whole. A URL net/url does not parse (a password with '/' or '%', say)
// loses everything between "://" and the last '@' before its query: that
// may hide part of a path too, never part of a password.
func URLs(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		start := i
		for start > 0 && schemeChar(s[start-1]) {
			start--
		}
		end := i + 3 + strings.IndexAny(s[i+3:], " \t\r\n\"'<>")
		if end < i+3 {
			end = len(s)
		}
		b.WriteString(s[:start])
		b.WriteString(redactURL(s[start:end]))
		s = s[end:]
	}
}

func schemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// redactURL redacts one URL (scheme://…, without spaces).
func redactURL(raw string) string {
	i := strings.Index(raw, "://")
	head, tail := raw[:i+3], raw[i+3:]
	beforeQuery := tail
	if q := strings.IndexAny(tail, "?#"); q >= 0 {
		beforeQuery = tail[:q]
	}
	at := strings.LastIndex(beforeQuery, "@")
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || (at >= 0 && (u.User == nil || strings.Contains(u.Host, "@") || strings.Contains(u.Path, "@"))) {
		// Not a URL net/url reads as ours: cut at the last '@'.
		if at >= 0 {
			tail = Mask + "@" + tail[at+1:]
		}
		return head + redactQuery(tail)
	}
	if u.User != nil {
		// Keep the host, port, path and query exactly as written.
		tail = Mask + "@" + beforeQuery[at+1:] + tail[len(beforeQuery):]
	}
	return head + redactQuery(tail)
}

// redactQuery masks the values of secret-looking parameters in the query
// of s (the part after '?', before '#').
func redactQuery(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	query, frag := s[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name := strings.ToLower(k)
		if un, err := url.QueryUnescape(k); err == nil {
			name = strings.ToLower(un)
		}
		for _, sk := range secretQueryKeys {
			if strings.Contains(name, sk) {
				parts[i] = k + "=" + Mask
				break
			}
		}
	}
	return s[:q+1] + strings.Join(parts, "&") + frag
}
