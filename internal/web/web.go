package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// assets holds the page: index.html and the files it links under
// /assets/.
//
//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every response of Handler. Inline
// scripts, inline styles, plugins, framing and form posts are refused;
// the page talks only to its own origin.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the dashboard: the page at / (and /index.html) and its
// files at /assets/NAME, for GET and HEAD. Other paths get 404, other
// methods 405. Responses are revalidated on every load (Cache-Control:
// no-cache with a content ETag), so a new binary's page shows at once.
func Handler() http.Handler {
	files := map[string]*asset{}
	// The embedded tree is fixed at build time: walking it cannot fail
	// unless the embed directive above is broken, which TestHandler
	// catches.
	_ = fs.WalkDir(assets, "assets", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "application/octet-stream"
		}
		files["/"+p] = &asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if idx := files["/assets/index.html"]; idx != nil {
		delete(files, "/assets/index.html")
		files["/"], files["/index.html"] = idx, idx
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		f := files[r.URL.Path]
		if f == nil {
			http.Error(w, "404 page not found: the dashboard is at /, the API under /api/v1/", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed: the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, strings.TrimPrefix(r.URL.Path, "/"), time.Time{}, bytes.NewReader(f.body))
	})
}
