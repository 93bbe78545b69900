package daemon

import "testing"

// TestHostAllowed: only names that no DNS answer can point elsewhere, and
// the configured names, pass; look-alikes of them do not.
func TestHostAllowed(t *testing.T) {
	allowed := []string{"bunker.example.test", "ops.example.test:8443", "Upper.Example.Test."}
	for _, c := range []struct {
		host string
		want bool
	}{
		{"", true},
		{"127.0.0.1:9090", true},
		{"10.1.2.3", true},
		{"[::1]:9090", true},
		{"[::1]", true},
		{"localhost:9090", true},
		{"LOCALHOST.:9090", true},
		{"bunker.example.test:9090", true},
		{"bunker.example.test", true},
		{"BUNKER.example.test.:1", true},
		{"ops.example.test:8443", true},
		{"upper.example.test:80", true},
		{"ops.example.test:9090", false},
		{"ops.example.test", false},
		{"evil.example:9090", false},
		{"evil.example", false},
		{"localhost.evil.example:9090", false},
		{"127.0.0.1.nip.io:9090", false},
		{"bunker.example.test.evil.example", false},
		{"xbunker.example.test", false},
		{":9090", false},
		{"[::1", false},
	} {
		if got := hostAllowed(c.host, allowed); got != c.want {
			t.Errorf("hostAllowed(%q) = %v, want %v", c.host, got, c.want)
		}
	}
}
