package notify

import (
	"net/url"
	"strings"
)

// maxWord is the longest path segment Redact keeps.
const maxWord = 16

// Redact returns a URL fit for logs and errors: scheme://host/path
// without userinfo, query ("?…" marks one) or fragment.
//
// The path is kept only up to its first segment that is not a plain word
// (1 to 16 lowercase ASCII letters, '-' or '_'); the rest becomes "/…".
// This is stricter than "keep the path" on purpose: popular webhook URLs
// carry their token in the path (Slack /services/T…/B…/<secret>,
// Mattermost /hooks/<key>, healthchecks.io /<uuid>), and such a token is
// as good as a password. A URL that does not parse is "<invalid URL>":
// url.Parse's own error would quote it.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "<invalid URL>"
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	b.WriteString(u.Host)
	if p := strings.TrimPrefix(u.Path, "/"); p != "" || u.Path == "/" {
		for seg := range strings.SplitSeq(p, "/") {
			if seg != "" && !plainWord(seg) {
				b.WriteString("/…")
				break
			}
			b.WriteString("/")
			b.WriteString(seg)
		}
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?…")
	}
	return b.String()
}

func plainWord(s string) bool {
	if len(s) > maxWord {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
