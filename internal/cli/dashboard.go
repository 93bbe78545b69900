package cli

import (
	"net/http"

	"github.com/bunkerbackup/bunker/internal/daemon"
)

// dashboardHandler serves the web dashboard.
func (a *App) dashboardHandler(d *daemon.Daemon) http.Handler {
	return http.NotFoundHandler()
}
