package redact

import (
	"strings"
	"testing"
)

// TestURLsHidesWholePassword: net/url takes user information up to the
// last '@' of the authority, so a password holding '@' (or ':', '/')
// must vanish whole from the text, not up to its first '@'.
func TestURLsHidesWholePassword(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"rest:https://user:p@ss@w0rd@host/repo", "rest:https://[redacted]@host/repo"},
		{"postgres://u:a@b@host/db", "postgres://[redacted]@host/db"},
		{"--repo=s3:https://k:se@cr@et@s3.example:9000/b?region=x", "--repo=s3:https://[redacted]@s3.example:9000/b?region=x"},
		{"sftp://u:pa/ss@w@host:22/srv", "sftp://[redacted]@host:22/srv"},
		{"mysql://root:x%zz@y@db:3306/app", "mysql://[redacted]@db:3306/app"},
		{"postgres://host/db?sslmode=disable&password=p@ss@w0rd", "postgres://host/db?sslmode=disable&password=[redacted]"},
		{"dsn postgres://u:a@b@h/db and https://t:o@k@x/y", "dsn postgres://[redacted]@h/db and https://[redacted]@x/y"},
		{"/srv/repo", "/srv/repo"},
		{"https://host/path", "https://host/path"},
		{"--tag", "--tag"},
	} {
		got := URLs(c.in)
		if got != c.want {
			t.Errorf("URLs(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, secret := range []string{"ss@w0rd", "w0rd", "a@b", "cr@et", "pa/ss", "x%zz", "o@k"} {
			if strings.Contains(c.in, secret) && strings.Contains(got, secret) {
				t.Errorf("URLs(%q) = %q keeps %q", c.in, got, secret)
			}
		}
	}
}
