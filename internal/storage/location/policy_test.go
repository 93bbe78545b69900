package location

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/retry"
)

func mustPolicy(t *testing.T, opts PolicyOptions) *Policy {
	t.Helper()
	p, err := NewPolicy(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicyDialer checks the dialer from the side of a location that
// wants to reach what it should not: the loopback, the cloud metadata
// address, a name that resolves to either, a host outside the list.
func TestPolicyDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cases := []struct {
		name  string
		hosts []string
		host  string
		why   string // "" when the dial must succeed
	}{
		{"loopback refused by default", nil, "127.0.0.1", "a loopback address"},
		{"a name resolving to loopback", nil, "localhost", "resolves to"},
		{"metadata address", nil, "169.254.169.254", "link-local"},
		{"IPv6 link-local", nil, "fe80::1", "link-local"},
		{"IPv4-mapped metadata", nil, "::ffff:169.254.169.254", "link-local"},
		{"unspecified", nil, "0.0.0.0", "unspecified"},
		{"wildcard still refuses loopback", []string{"*"}, "127.0.0.1", "a loopback address"},
		{"listed address", []string{"127.0.0.1"}, "127.0.0.1", ""},
		{"listed block allows a name in it", []string{"127.0.0.0/8"}, "localhost", ""},
		{"name outside the list", []string{"*.storage.example"}, "other.example", "not an allowed host"},
		{"address outside the list", []string{"*.storage.example"}, "10.1.2.3", "not an allowed host"},
		{"suffix is not a substring", []string{"*.storage.example"}, "evilstorage.example", "not an allowed host"},
		{"listed name resolving to loopback", []string{"localhost"}, "localhost", "resolves to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, PolicyOptions{Hosts: tc.hosts})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := p.Dialer(5*time.Second)(ctx, "tcp", net.JoinHostPort(tc.host, port))
			if tc.why == "" {
				if err != nil {
					t.Fatalf("dial %s: %v", tc.host, err)
				}
				_ = c.Close()
				return
			}
			if err == nil {
				_ = c.Close()
				t.Fatalf("dial %s succeeded", tc.host)
			}
			if !IsPolicyError(err) || !storage.IsPermanent(err) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("dial %s: %v (policy error %v, permanent %v), want one saying %q", tc.host, err, IsPolicyError(err), storage.IsPermanent(err), tc.why)
			}
		})
	}
}

func TestNewPolicyRefusesBadEntries(t *testing.T) {
	for _, o := range []PolicyOptions{
		{Schemes: []string{"ftp"}},
		{Hosts: []string{"http://x"}},
		{Hosts: []string{"a*b"}},
		{Hosts: []string{"*."}},
		{Hosts: []string{"user@host"}},
	} {
		if _, err := NewPolicy(o); err == nil {
			t.Errorf("NewPolicy(%+v) accepted", o)
		}
	}
}

// TestOpenUnderPolicy: a location opened under a policy reaches nothing
// the policy refuses, through any backend, and a backend with no
// credentials of its own does not borrow the process's.
func TestOpenUnderPolicy(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "internal service", http.StatusInternalServerError)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	env := map[string]string{
		// What the operator's own environment might hold: never seen.
		"HOME": t.TempDir(),
	}
	tenant := map[string]map[string]string{
		"azure": {"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=" + srv.URL + "/a;"},
	}
	p := mustPolicy(t, PolicyOptions{Schemes: []string{"s3", "gs", "azure", "sftp", "rest"}})
	cases := []struct {
		loc, want string
	}{
		{t.TempDir(), `scheme "local"`},
		{"local:" + t.TempDir(), `scheme "local"`},
		{"rest:" + srv.URL + "/", "loopback"},
		{"s3:" + srv.URL + "/bucket", "AWS_ACCESS_KEY_ID"},
		{"gs:bucket:/", "identity"},
		{"azure:container:/", "loopback"},
		{"sftp:user@" + addr + ":/repo", "loopback"},
	}
	for _, tc := range cases {
		t.Run(tc.loc, func(t *testing.T) {
			scheme, _ := Split(tc.loc)
			getenv := func(k string) string {
				if v, ok := tenant[scheme][k]; ok {
					return v
				}
				return env[k]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			be, err := Open(ctx, tc.loc, Options{Getenv: getenv, Policy: p, Retry: quickRetry})
			if err == nil {
				_ = be.Close()
				t.Fatalf("opened %s", tc.loc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open %s: %v, want an error saying %q", tc.loc, err, tc.want)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the refused server got %d requests", n)
			}
		})
	}

	// The same locations with the address listed do reach the server
	// (the test server stands in for a store the admin allows).
	allow := mustPolicy(t, PolicyOptions{Hosts: []string{"127.0.0.1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if be, err := Open(ctx, "rest:"+srv.URL+"/", Options{Getenv: func(string) string { return "" }, Policy: allow, Retry: quickRetry}); err == nil {
		_ = be.Close()
	}
	if hits.Load() == 0 {
		t.Error("an allowed host was not contacted")
	}
}

var quickRetry = retry.Options{Attempts: 1}

func TestPolicyErrorIsPermanent(t *testing.T) {
	err := mustPolicy(t, PolicyOptions{Schemes: []string{"s3"}}).CheckScheme("/tmp/x")
	if !IsPolicyError(err) || !storage.IsPermanent(err) || !errors.As(err, new(*PolicyError)) {
		t.Errorf("CheckScheme: %v", err)
	}
	var nilPolicy *Policy
	if err := nilPolicy.CheckScheme("/tmp/x"); err != nil || !nilPolicy.AmbientCredentials() {
		t.Errorf("a nil policy refuses: %v", err)
	}
}
