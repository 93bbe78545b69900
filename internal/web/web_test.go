package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestHandler: the page and its assets with their types, the security
// headers on every answer, revalidation by ETag, 404 and 405.
func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="assets/app.js" defer></script>`},
		{"/index.html", "text/html; charset=utf-8", `<table id="jobs"`},
		{"/assets/app.js", "text/javascript; charset=utf-8", `"use strict";`},
		{"/assets/app.css", "text/css; charset=utf-8", `.badge.violated`},
		{"/assets/favicon.svg", "image/svg+xml", `<svg`},
	} {
		w := get(t, h, "GET", tc.path, nil)
		if w.Code != 200 || w.Header().Get("Content-Type") != tc.ctype || !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, w.Code, w.Header().Get("Content-Type"), tc.contains, strings.Contains(w.Body.String(), tc.contains))
		}
		if got := w.Header().Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self';") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, got)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: headers %v", tc.path, w.Header())
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", tc.path)
		}
		if w := get(t, h, "GET", tc.path, map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", tc.path, w.Code)
		}
		if w := get(t, h, "HEAD", tc.path, nil); w.Code != 200 || w.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d with %d bytes", tc.path, w.Code, w.Body.Len())
		}
	}
	for _, p := range []string{"/nope", "/assets/", "/assets/index.html", "/assets/../web.go", "/api/v1/status"} {
		w := get(t, h, "GET", p, nil)
		if w.Code != http.StatusNotFound || w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: %d, want 404 with the CSP", p, w.Code)
		}
	}
	if w := get(t, h, "POST", "/", nil); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

// TestAssetsServed: every embedded file is reachable, so a new asset
// cannot be forgotten by the handler.
func TestAssetsServed(t *testing.T) {
	h := Handler()
	err := fs.WalkDir(assets, "assets", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || p == "assets/index.html" {
			return err
		}
		if w := get(t, h, "GET", "/"+p, nil); w.Code != 200 {
			t.Errorf("GET /%s: %d", p, w.Code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPageIsSelfContained: the rules the CSP enforces in the browser,
// checked on the source so a violation fails here and not only in a
// browser test: no inline script, style or event handler; nothing loaded
// from another origin; API text never parsed as HTML.
func TestPageIsSelfContained(t *testing.T) {
	read := func(p string) string {
		b, err := assets.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	page := read("assets/index.html")
	for _, m := range regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script: %s", m[0])
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)javascript:`),
	} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("index.html: %s at byte %d", bad, loc[0])
		}
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "assets/"):
			if _, err := assets.ReadFile(ref); err != nil {
				t.Errorf("index.html links %s, which is not embedded", ref)
			}
		case strings.HasPrefix(ref, "api/v1/") || ref == "metrics":
		default:
			t.Errorf("index.html links %s: only assets/ and the daemon's own paths are allowed", ref)
		}
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, p := range []string{"assets/index.html", "assets/app.js", "assets/app.css", "assets/favicon.svg"} {
		src := strings.ReplaceAll(read(p), "http://www.w3.org/2000/svg", "")
		if loc := external.FindStringIndex(src); loc != nil {
			t.Errorf("%s refers to another origin: %q", p, src[loc[0]:loc[1]])
		}
	}
	js := read("assets/app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"style\"", ".style."} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}
