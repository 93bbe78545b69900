package sftp

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	baseEnv := map[string]string{"USER": "alice", "HOME": "/home/alice"}
	defaults := func(c Config) Config {
		if c.Port == 0 {
			c.Port = 22
		}
		if c.DefaultKeyFiles == nil && c.KeyFile == "" {
			c.DefaultKeyFiles = []string{"/home/alice/.ssh/id_ed25519", "/home/alice/.ssh/id_ecdsa", "/home/alice/.ssh/id_rsa"}
		}
		if c.KnownHostsFiles == nil {
			c.KnownHostsFiles = []string{"/home/alice/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"}
		}
		if c.Connections == 0 {
			c.Connections = DefaultConnections
		}
		c.ConnectTimeout = DefaultConnectTimeout
		return c
	}
	tests := []struct {
		loc     string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{loc: "bob@host:/srv/backup", want: Config{User: "bob", Host: "host", Path: "/srv/backup"}},
		{loc: "host:/srv/backup", want: Config{User: "alice", Host: "host", Path: "/srv/backup"}},
		{loc: "bob@host:relative/path", want: Config{User: "bob", Host: "host", Path: "relative/path"}},
		{loc: "bob@host:~/relative", want: Config{User: "bob", Host: "host", Path: "relative"}},
		{loc: "bob@host:/a/b/../c/", want: Config{User: "bob", Host: "host", Path: "/a/c"}},
		{loc: "bob@10.0.0.1:/x", want: Config{User: "bob", Host: "10.0.0.1", Path: "/x"}},
		{loc: "bob@[::1]:/x", want: Config{User: "bob", Host: "::1", Path: "/x"}},
		{loc: "[fe80::1%eth0]:/x", wantErr: "invalid IP address"},
		{loc: "a@b@host:/x", want: Config{User: "a@b", Host: "host", Path: "/x"}},
		{loc: "host:/path/with:colon@at", want: Config{User: "alice", Host: "host", Path: "/path/with:colon@at"}},
		{loc: "//bob@host:2222/srv/backup", want: Config{User: "bob", Host: "host", Port: 2222, Path: "/srv/backup"}},
		{loc: "//host/srv/backup", want: Config{User: "alice", Host: "host", Path: "/srv/backup"}},
		{loc: "//bob@[::1]:2222/x", want: Config{User: "bob", Host: "::1", Port: 2222, Path: "/x"}},
		{loc: "//bob@host/~/rel/dir", want: Config{User: "bob", Host: "host", Path: "rel/dir"}},
		{loc: "//bob%40corp@host/x", want: Config{User: "bob@corp", Host: "host", Path: "/x"}},
		{loc: "//bob@host:22/a%20b", want: Config{User: "bob", Host: "host", Path: "/a b"}},
		{
			loc: "bob@host:/x",
			env: map[string]string{
				"BUNKER_SFTP_KEY":            "~/keys/backup",
				"BUNKER_SFTP_KEY_PASSPHRASE": "s3cret",
				"BUNKER_SFTP_KNOWN_HOSTS":    "/etc/bunker/known_hosts",
				"SSH_AUTH_SOCK":              "/run/agent.sock",
				"BUNKER_SFTP_CONNECTIONS":    "4",
			},
			want: Config{
				User: "bob", Host: "host", Path: "/x", KeyFile: "/home/alice/keys/backup", KeyPassphrase: "s3cret",
				KnownHostsFiles: []string{"/etc/bunker/known_hosts"}, AgentSocket: "/run/agent.sock", Connections: 4,
			},
		},
		// Errors.
		{loc: "", wantErr: `no ":" after the host`},
		{loc: "host", wantErr: `no ":" after the host`},
		{loc: "host:", wantErr: "no repository path"},
		{loc: "host:~", wantErr: "login directory itself"},
		{loc: "host:.", wantErr: "login directory itself"},
		{loc: "host:~bob/x", wantErr: "~user"},
		{loc: ":/x", wantErr: "no host"},
		{loc: "@host:/x", wantErr: "empty user name"},
		{loc: "bob:pw@host:/x", wantErr: "passwords are not supported"},
		{loc: "/local/path", wantErr: "want [user@]host:path"},
		{loc: "[::1:/x", wantErr: `no ":" after the host`},
		{loc: "[nohost]:/x", wantErr: "invalid IP address"},
		{loc: "ho st:/x", wantErr: "invalid host"},
		{loc: "host:/x\x00y", wantErr: "NUL"},
		{loc: "//bob:pw@host/x", wantErr: "passwords are not supported"},
		{loc: "//@host/x", wantErr: "empty user name"},
		{loc: "//bob@host", wantErr: "no repository path"},
		{loc: "//bob@host/", wantErr: "no repository path"},
		{loc: "//bob@host/~", wantErr: "login directory itself"},
		{loc: "//bob@host/~bob/x", wantErr: "~user"},
		{loc: "//bob@host:0/x", wantErr: "invalid port"},
		{loc: "//bob@host:99999/x", wantErr: "invalid port"},
		{loc: "//bob@host:ssh/x", wantErr: "invalid port"},
		{loc: "//bob@host:/x", wantErr: "empty port"},
		{loc: "//bob@/x", wantErr: "no host"},
		{loc: "//bob@host/x?opt=1", wantErr: "query"},
		{loc: "//bob@host/x#frag", wantErr: "fragment"},
		{loc: "//bob@host/%zz", wantErr: "invalid URL escape"},
		{loc: "host:/x", env: map[string]string{"USER": ""}, wantErr: "no user name"},
		{loc: "bob@host:/x", env: map[string]string{"HOME": ""}, wantErr: "no known_hosts file"},
		{loc: "bob@host:/x", env: map[string]string{"BUNKER_SFTP_CONNECTIONS": "0"}, wantErr: "BUNKER_SFTP_CONNECTIONS"},
		{loc: "bob@host:/x", env: map[string]string{"BUNKER_SFTP_CONNECTIONS": "17"}, wantErr: "BUNKER_SFTP_CONNECTIONS"},
		{loc: "bob@host:/x", env: map[string]string{"BUNKER_SFTP_CONNECTIONS": "many"}, wantErr: "BUNKER_SFTP_CONNECTIONS"},
	}
	for _, tc := range tests {
		t.Run(tc.loc, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range baseEnv {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			got, err := ParseConfig(tc.loc, func(k string) string { return env[k] })
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseConfig(%q) = %v, want error %q", tc.loc, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseConfig(%q) error = %q, want it to contain %q", tc.loc, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", tc.loc, err)
			}
			want := defaults(tc.want)
			want.loc = tc.loc
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseConfig(%q)\n got %#v\nwant %#v", tc.loc, fields(got), fields(want))
			}
			if loc := got.Location(); loc != "sftp:"+tc.loc {
				t.Errorf("Location() = %q, want %q", loc, "sftp:"+tc.loc)
			}
			if got.KeyPassphrase != "" && strings.Contains(got.String(), got.KeyPassphrase) {
				t.Errorf("String() shows the passphrase: %s", got)
			}
		})
	}
}

// fields shows a Config with its secrets, for test failure messages only.
func fields(c Config) map[string]any {
	return map[string]any{
		"User": c.User, "Host": c.Host, "Port": c.Port, "Path": c.Path, "KeyFile": c.KeyFile,
		"DefaultKeyFiles": c.DefaultKeyFiles, "KeyPassphrase": c.KeyPassphrase, "AgentSocket": c.AgentSocket,
		"KnownHostsFiles": c.KnownHostsFiles, "Connections": c.Connections, "ConnectTimeout": c.ConnectTimeout, "loc": c.loc,
	}
}

func TestConfigLocation(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{User: "u", Host: "h", Port: 22, Path: "/p"}, "sftp:u@h:/p"},
		{Config{User: "u", Host: "h", Port: 22, Path: "rel"}, "sftp:u@h:rel"},
		{Config{User: "u", Host: "::1", Port: 22, Path: "/p"}, "sftp:u@[::1]:/p"},
		{Config{User: "u", Host: "h", Port: 2222, Path: "/p"}, "sftp://u@h:2222/p"},
		{Config{User: "u", Host: "::1", Port: 2222, Path: "rel"}, "sftp://u@[::1]:2222/~/rel"},
	}
	for _, tc := range tests {
		if got := tc.cfg.Location(); got != tc.want {
			t.Errorf("%#v.Location() = %q, want %q", fields(tc.cfg), got, tc.want)
		}
		// The canonical form parses back to the same place.
		back, err := ParseConfig(strings.TrimPrefix(tc.want, "sftp:"), func(k string) string {
			return map[string]string{"HOME": "/h"}[k]
		})
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", tc.want, err)
			continue
		}
		if back.User != tc.cfg.User || back.Host != tc.cfg.Host || back.Port != tc.cfg.Port || back.Path != tc.cfg.Path {
			t.Errorf("ParseConfig(%q) = %#v, want %#v", tc.want, fields(back), fields(tc.cfg))
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{User: "u", Host: "h", Port: 22, Path: "/p", KnownHostsFiles: []string{"/k"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%v): %v", ok, err)
	}
	for name, mod := range map[string]func(*Config){
		"no user":         func(c *Config) { c.User = "" },
		"no host":         func(c *Config) { c.Host = "" },
		"port 0":          func(c *Config) { c.Port = 0 },
		"no path":         func(c *Config) { c.Path = "" },
		"no known_hosts":  func(c *Config) { c.KnownHostsFiles = nil },
		"connections":     func(c *Config) { c.Connections = MaxConnections + 1 },
		"timeout":         func(c *Config) { c.ConnectTimeout = -time.Second },
		"bracketed host":  func(c *Config) { c.Host = "[::1]" },
		"host with slash": func(c *Config) { c.Host = "a/b" },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("Validate with %s succeeded", name)
		}
	}
}
