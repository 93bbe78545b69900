package rest

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	fpBytes := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		name     string
		loc      string
		env      map[string]string
		wantURL  string
		wantRepo string
		wantUser string
		wantPW   string
		wantLoc  string
		wantFP   []byte
		wantCA   string
		wantErr  string
	}{
		{name: "plain", loc: "https://host:8000/repo", wantURL: "https://host:8000", wantRepo: "/repo", wantLoc: "rest:https://host:8000/repo"},
		{name: "root", loc: "https://host", wantURL: "https://host", wantRepo: "/", wantLoc: "rest:https://host/"},
		{name: "root slash", loc: "http://127.0.0.1:8000/", wantURL: "http://127.0.0.1:8000", wantRepo: "/", wantLoc: "rest:http://127.0.0.1:8000/"},
		{name: "nested trailing slash", loc: "https://alice@h/alice/repo.1/", wantURL: "https://h", wantRepo: "/alice/repo.1", wantUser: "alice", wantLoc: "rest:https://alice@h/alice/repo.1"},
		{name: "password from env", loc: "https://alice@h/r", env: map[string]string{EnvPassword: "s3cret"}, wantURL: "https://h", wantRepo: "/r", wantUser: "alice", wantPW: "s3cret", wantLoc: "rest:https://alice@h/r"},
		{name: "password in url hidden", loc: "https://alice:pw@h/r", wantURL: "https://h", wantRepo: "/r", wantUser: "alice", wantPW: "pw", wantLoc: "rest:https://alice@h/r"},
		{name: "env wins over url", loc: "https://alice:pw@h/r", env: map[string]string{EnvPassword: "env"}, wantURL: "https://h", wantRepo: "/r", wantUser: "alice", wantPW: "env", wantLoc: "rest:https://alice@h/r"},
		{name: "ipv6", loc: "https://[::1]:8000/r", wantURL: "https://[::1]:8000", wantRepo: "/r", wantLoc: "rest:https://[::1]:8000/r"},
		{name: "fingerprint", loc: "https://h/r", env: map[string]string{EnvFingerprint: "sha256:" + fp}, wantURL: "https://h", wantRepo: "/r", wantFP: fpBytes, wantLoc: "rest:https://h/r"},
		{name: "fingerprint upper with colons", loc: "https://h/r", env: map[string]string{EnvFingerprint: "SHA256:" + strings.Repeat("AB:", 31) + "AB"}, wantURL: "https://h", wantRepo: "/r", wantFP: fpBytes, wantLoc: "rest:https://h/r"},
		{name: "ca", loc: "https://h/r", env: map[string]string{EnvCA: "/etc/ca.pem"}, wantURL: "https://h", wantRepo: "/r", wantCA: "/etc/ca.pem", wantLoc: "rest:https://h/r"},

		{name: "no scheme", loc: "host:8000/repo", wantErr: "https://"},
		{name: "ftp", loc: "ftp://h/r", wantErr: "https://"},
		{name: "empty", loc: "", wantErr: "https://"},
		{name: "no host", loc: "https:///repo", wantErr: "no host"},
		{name: "port only", loc: "https://:8000/repo", wantErr: "no host"},
		{name: "bad port", loc: "https://h:99999/r", wantErr: "port"},
		{name: "query", loc: "https://h/r?x=1", wantErr: "query"},
		{name: "fragment", loc: "https://h/r#x", wantErr: "fragment"},
		{name: "dotdot", loc: "https://h/../etc", wantErr: "dot"},
		{name: "escaped dotdot", loc: "https://h/%2e%2e/x", wantErr: "escaped"},
		{name: "escaped slash", loc: "https://h/a%2fb", wantErr: "escaped"},
		{name: "space", loc: "https://h/a%20b", wantErr: "[A-Za-z0-9._-]"},
		{name: "reserved", loc: "https://h/keys", wantErr: "reserved"},
		{name: "empty segment", loc: "https://h/a//b", wantErr: "empty"},
		{name: "too deep", loc: "https://h/1/2/3/4/5/6/7/8/9", wantErr: "segments"},
		{name: "long segment", loc: "https://h/" + strings.Repeat("a", 65), wantErr: "longer"},
		{name: "empty user", loc: "https://:pw@h/r", wantErr: "empty user"},
		{name: "bad fingerprint", loc: "https://h/r", env: map[string]string{EnvFingerprint: "ab" + fp}, wantErr: EnvFingerprint},
		{name: "short fingerprint", loc: "https://h/r", env: map[string]string{EnvFingerprint: "sha256:abcd"}, wantErr: EnvFingerprint},
		{name: "fingerprint over http", loc: "http://h/r", env: map[string]string{EnvFingerprint: "sha256:" + fp}, wantErr: "https://"},
		{name: "ca and fingerprint", loc: "https://h/r", env: map[string]string{EnvFingerprint: "sha256:" + fp, EnvCA: "x"}, wantErr: "not both"},
		{name: "malformed", loc: "https://h:x:y/r", wantErr: "rest location"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig(tc.loc, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseConfig(%q) = %v, want error containing %q", tc.loc, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), ":pw") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", tc.loc, err)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if got := cfg.URL.String(); got != tc.wantURL {
				t.Errorf("URL = %q, want %q", got, tc.wantURL)
			}
			if cfg.Repo != tc.wantRepo || cfg.User != tc.wantUser || cfg.Password != tc.wantPW || cfg.CAFile != tc.wantCA {
				t.Errorf("repo, user, password, ca = %q %q %q %q; want %q %q %q %q", cfg.Repo, cfg.User, cfg.Password, cfg.CAFile, tc.wantRepo, tc.wantUser, tc.wantPW, tc.wantCA)
			}
			if !bytes.Equal(cfg.Fingerprint, tc.wantFP) {
				t.Errorf("Fingerprint = %x, want %x", cfg.Fingerprint, tc.wantFP)
			}
			if got := cfg.location(); got != tc.wantLoc {
				t.Errorf("location = %q, want %q", got, tc.wantLoc)
			}
		})
	}
}

func TestParseConfigNilGetenv(t *testing.T) {
	if _, err := ParseConfig("https://h/r", nil); err != nil {
		t.Fatal(err)
	}
}
