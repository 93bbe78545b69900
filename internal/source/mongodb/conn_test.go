package mongodb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestURIRedaction(t *testing.T) {
	for _, tc := range []struct {
		uri, redacted, public string
		hosts                 []string
		pw                    string
	}{
		{"mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/", []string{"127.0.0.1:27017"}, ""},
		{"mongodb://u:p%40ss%3Aw0rd@h1:1,h2:2/admin?replicaSet=rs0&tls=true",
			"mongodb://u:xxxxx@h1:1,h2:2/admin?replicaSet=rs0&tls=true",
			"mongodb://u@h1:1,h2:2/admin?replicaSet=rs0&tls=true", []string{"h1:1", "h2:2"}, "p@ss:w0rd"},
		{"mongodb+srv://bob:secret@cluster0.example.net/?authSource=admin",
			"mongodb+srv://bob:xxxxx@cluster0.example.net/?authSource=admin",
			"mongodb+srv://bob@cluster0.example.net/?authSource=admin", []string{"cluster0.example.net"}, "secret"},
		{"mongodb://h?tls=true&tlsCertificateKeyFilePassword=keysecret",
			"mongodb://h/?tls=true&tlsCertificateKeyFilePassword=xxxxx",
			"mongodb://h/?tls=true", []string{"h"}, ""},
		// An unescaped '/' in the password is invalid, but still hidden.
		{"mongodb://u:pa/ss@h:1/db", "mongodb://u:xxxxx@h:1/db", "mongodb://u@h:1/db", []string{"h:1"}, "pa/ss"},
		{"mongodb://%2Ftmp%2Fmongodb-27017.sock", "mongodb://%2Ftmp%2Fmongodb-27017.sock", "mongodb://%2Ftmp%2Fmongodb-27017.sock",
			[]string{"/tmp/mongodb-27017.sock"}, ""},
	} {
		cfg := Config{URI: tc.uri}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", tc.uri, err)
		}
		if got := cfg.Redacted(); got != tc.redacted {
			t.Errorf("Redacted(%s) = %s, want %s", tc.uri, got, tc.redacted)
		}
		if got := cfg.Public(); got != tc.public {
			t.Errorf("Public(%s) = %s, want %s", tc.uri, got, tc.public)
		}
		if got := cfg.Hosts(); !slices.Equal(got, tc.hosts) {
			t.Errorf("Hosts(%s) = %q, want %q", tc.uri, got, tc.hosts)
		}
		if pw, ok := cfg.password(); pw != tc.pw || ok != (tc.pw != "") {
			t.Errorf("password(%s) = %q, %v", tc.uri, pw, ok)
		}
	}
	for _, bad := range []string{"", "http://h/", "mongodb://", "mongodb:///db", "127.0.0.1:27017"} {
		if err := (Config{URI: bad}).Validate(); err == nil {
			t.Errorf("Validate(%q) accepted", bad)
		}
	}
	if err := (Config{URI: "mongodb://h/", Password: "x", PasswordSet: true}).Validate(); err == nil {
		t.Error("a password without a user was accepted")
	}
	cfg := Config{URI: "mongodb://u@h/", Password: "from-file", PasswordSet: true}
	if got := cfg.Redacted(); got != "mongodb://u:xxxxx@h/" {
		t.Errorf("Redacted with a password file = %s", got)
	}
}

func TestScrub(t *testing.T) {
	cfg := Config{URI: "mongodb://u:s%3Ecret!@h:1/?tlsCertificateKeyFilePassword=k3ysecret"}
	msg := cfg.scrub("failed: mongodb://u:s%3Ecret!@h:1/?tlsCertificateKeyFilePassword=k3ysecret said s>cret! and s%3Ecret%21 and k3ysecret")
	for _, secret := range []string{"s>cret!", "s%3Ecret", "k3ysecret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("scrubbed message still has %q: %s", secret, msg)
		}
	}
	err := cfg.wrap(context.DeadlineExceeded, "connect to %s", "h:1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("wrap loses the error's kind")
	}
}

func TestConnectUnreachable(t *testing.T) {
	// Nothing listens on port 1; the error must come fast and name the
	// host, not the password.
	cfg := Config{URI: "mongodb://u:hunter22@127.0.0.1:1/?connectTimeoutMS=300", ServerSelectionTimeout: 500 * time.Millisecond}
	_, err := Connect(context.Background(), cfg)
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("error: %v", err)
	}
}

// FuzzRedact: whatever the URI, the redacted form has no password left
// and parses back with "xxxxx" as its password; the public form none.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"mongodb://u:p@h/", "mongodb+srv://a:b@c/?x=y", "mongodb://u:p/q@h", "mongodb://h/?appName=a@b",
		"mongodb://u:p@h1,h2/db?tlsCertificateKeyFilePassword=z", "mongodb://:@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		p, err := splitURI(uri)
		if err != nil {
			return
		}
		cfg := Config{URI: uri}
		red, pub := cfg.Redacted(), cfg.Public()
		rp, err := splitURI(red)
		if err != nil {
			t.Fatalf("redacted %q does not parse: %v", red, err)
		}
		if p.hasPass && rp.pass != redactedPassword {
			t.Fatalf("redacted %q of %q has password %q", red, uri, rp.pass)
		}
		pp, err := splitURI(pub)
		if err != nil || pp.hasPass {
			t.Fatalf("public %q of %q has a password (%v)", pub, uri, err)
		}
		if _, ok := (Config{URI: pub}).keyPassword(); ok {
			t.Fatalf("public %q of %q has a key password", pub, uri)
		}
		if kp, ok := (Config{URI: red}).keyPassword(); ok && kp != redactedPassword {
			t.Fatalf("redacted %q of %q has key password %q", red, uri, kp)
		}
	})
}
