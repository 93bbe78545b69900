package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// TestServices delivers an event through Shoutrrr service URLs to local
// receivers: ntfy (its own HTTP API) and a generic JSON webhook. The URLs
// are secret references; an event kind a service did not ask for is not
// sent; a failing service is named by scheme and host only, never by its
// credentials.
func TestServices(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] = string(b) + "\ntitle=" + r.Header.Get("Title")
		mu.Unlock()
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "event": "message"})
	}))
	defer srv.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	host := strings.TrimPrefix(srv.URL, "http://")
	env := map[string]string{
		"NTFY":    "ntfy://" + host + "/backups?scheme=http",
		"GENERIC": "generic://" + host + "/hook?disabletls=yes&template=json",
		"FAILING": "generic://s3cr3t-user:s3cr3t-pw@" + host + "/fail?disabletls=yes",
	}
	cfg := plan.Notify{Services: []*plan.Service{
		{URL: "env:NTFY"},
		{URL: "env:GENERIC", Events: []string{"failure"}},
		{URL: "env:GENERIC", Events: []string{"rpo"}},
	}}
	n := New(cfg, Options{Getenv: func(k string) string { return env[k] }, Retries: -1, Hostname: "h"})
	if err := n.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ntfy, generic := got["/backups"], got["/hook"]
	mu.Unlock()
	if !strings.Contains(ntfy, "input/output error") || !strings.Contains(ntfy, "job home failed") {
		t.Errorf("ntfy received %q", ntfy)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(generic, "\ntitle=", 2)[0]), &m); err != nil || m["title"] != "job home failed" || !strings.Contains(m["message"].(string), "repository: nas") {
		t.Errorf("generic webhook received %q (%v)", generic, err)
	}

	for _, ref := range []string{"env:FAILING"} {
		bad := New(plan.Notify{Services: []*plan.Service{{URL: ref}}}, Options{Getenv: func(k string) string { return env[k] }, Retries: -1})
		err := bad.Notify(context.Background(), testEvent())
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "generic://127.0.0.1") {
			t.Errorf("a failing service (%s): %v", ref, err)
		}
	}
}

// TestServicesInPlans: a service URL must be a secret reference, and its
// events known kinds.
func TestServicesInPlans(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"services: [{url: 'ntfy://ntfy.sh/topic'}]", "url is not a secret reference"},
		{"services: [{url: env:NTFY, events: [failur]}]", `event "failur" is not known`},
	} {
		src := "repositories: [{name: r, location: /r, password: env:P}]\njobs: [{name: j, source: {type: files, paths: [/x]}, schedule: every 1h, repository: r}]\nnotify:\n  " + tc.yaml + "\n"
		_, err := plan.Parse("p.yaml", []byte(src), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestRedactURL: an error that quotes a service URL in parts — the HTTP
// URL a service calls, rebuilt from the path and query of its Shoutrrr
// URL — shows none of its tokens.
func TestRedactURL(t *testing.T) {
	raw := "generic://user1:s3cr3t-pw@hooks.example.net/api/webhooks/s3cr3t-path-token?disabletls=yes&apikey=s3cr3t-query"
	msg := `Post "http://hooks.example.net/api/webhooks/s3cr3t-path-token?apikey=s3cr3t-query": 403; as user1 with s3cr3t-pw; ` + raw
	got := redactURL(msg, raw)
	if strings.Contains(got, "s3cr3t") || strings.Contains(got, "user1") || !strings.Contains(got, "generic://hooks.example.net") {
		t.Errorf("redacted: %s", got)
	}
}
