// Package web is the dashboard of bunker daemon: one page of plain HTML,
// CSS and JavaScript, embedded in the binary, that polls the daemon's
// JSON API (/api/v1/status, /api/v1/runs, /api/v1/snapshots,
// /api/v1/sizes) from the same origin every 10 seconds and shows the jobs
// with their RPO state, the 3-2-1 matrix, the restore drills, a snapshot
// browser, run logs and repository sizes over time.
//
// Guarantees:
//   - Nothing is loaded from elsewhere: no CDN, no web fonts, no build
//     step. The page works on a machine without internet access.
//   - Every response carries a Content-Security-Policy of
//     default-src 'self' (no inline script or style, no framing), and the
//     script writes text from the API only through textContent, never as
//     HTML, so a job name or a log line cannot inject markup.
//   - The dashboard is read-only: it never sends a request that changes
//     anything, so it never needs the run token. It sends the read token
//     the user types (kept in the tab's session storage) with every API
//     request, and asks for it when the daemon answers 401.
//
// The API itself is served by package daemon; Handler serves only the
// page and its assets and answers 404 to everything else.
package web
