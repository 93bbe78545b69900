package cli

import (
	"net/http"

	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/web"
)

// dashboardHandler serves the web dashboard (package web): a page that
// reads d's JSON API from the same origin, so it needs nothing of d here.
func (a *App) dashboardHandler(d *daemon.Daemon) http.Handler {
	return web.Handler()
}
