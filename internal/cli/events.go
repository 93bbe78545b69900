package cli

import (
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
)

// cliEvents prints what use cases say: warnings always, notes at -v,
// progress on a terminal (or as JSON status lines with --json).
type cliEvents struct{ a *App }

func (e cliEvents) Warn(msg string) { e.a.out.warnf("%s", msg) }

// Info prints a note at -v: a line of text, or with --json a log line on
// stderr (stdout holds only results).
func (e cliEvents) Info(msg string) {
	if e.a.g.json && e.a.g.verbose > 0 {
		e.a.log.Info(msg)
		return
	}
	e.a.out.infof("%s", msg)
}

func (e cliEvents) Progress(p app.Progress) {
	a := e.a
	if !a.out.progress && !a.g.json {
		return
	}
	if p.Final {
		a.out.doneStatus()
		return
	}
	if p.Source != "" {
		sourceProgress(a, p)
		return
	}
	if p.Op == "check" {
		checkProgress(a, p)
		return
	}
	if p.Op == "restore" {
		restoreProgress(a, p)
		return
	}
	if p.Op == "copy" || p.Op == "prune" {
		maintenanceProgress(a, p)
		return
	}
	if a.g.json {
		if !a.out.jsonStatusDue(time.Now()) {
			return
		}
		m := map[string]any{"message_type": "status", "seconds_elapsed": int(p.Elapsed.Seconds()),
			"files_done": p.Files, "bytes_done": p.Bytes, "bytes_read": p.BytesRead, "bytes_added": p.BytesAdded, "errors": p.Errors}
		if p.Scanned {
			m["total_files"], m["total_bytes"], m["scan_finished"] = p.FilesTotal, p.BytesTotal, p.ScanDone
		}
		a.out.jsonLine(withETA(m, p))
		return
	}
	pct, eta := "", ""
	if p.BytesTotal > 0 {
		pct = fmt.Sprintf("%5.1f%% ", min(100, float64(p.Bytes)/float64(p.BytesTotal)*100))
	}
	if p.ScanDone && p.Bytes > 0 && p.BytesTotal > p.Bytes {
		eta = " ETA " + formatDuration(time.Duration(float64(p.Elapsed)*float64(p.BytesTotal-p.Bytes)/float64(p.Bytes)))
	}
	cur := p.Current
	if len(cur) > 40 {
		cur = "…" + cur[len(cur)-39:]
	}
	a.out.status(fmt.Sprintf("[%s] %s%d files, %s of %s, %s added, %s%s  %s", formatDuration(p.Elapsed), pct, p.Files,
		formatBytes(p.Bytes), formatBytes(p.BytesTotal), formatBytes(p.BytesAdded), formatRate(p.BytesRead, p.Elapsed), eta, cur))
}

// sourceProgress prints the progress of a source backup: streams written
// as they come, with no total to compare with.
func sourceProgress(a *App, p app.Progress) {
	if a.g.json {
		if a.out.jsonStatusDue(time.Now()) {
			a.out.jsonLine(map[string]any{"message_type": "status", "seconds_elapsed": int(p.Elapsed.Seconds()),
				"files_done": p.Files, "bytes_read": p.BytesRead, "bytes_added": p.BytesAdded, "current": p.Current})
		}
		return
	}
	cur := p.Current
	if len(cur) > 40 {
		cur = "…" + cur[len(cur)-39:]
	}
	a.out.status(fmt.Sprintf("[%s] %d files, %s read, %s added, %s  %s", formatDuration(p.Elapsed), p.Files,
		formatBytes(p.BytesRead), formatBytes(p.BytesAdded), formatRate(p.BytesRead, p.Elapsed), cur))
}

// checkProgress prints the progress of a check: packs read of those to
// read.
func checkProgress(a *App, p app.Progress) {
	if a.g.json {
		if a.out.jsonStatusDue(time.Now()) {
			a.out.jsonLine(withETA(map[string]any{"message_type": "status", "seconds_elapsed": int(p.Elapsed.Seconds()), "packs_read": p.Packs, "packs_total": p.PacksTotal, "bytes_read": p.BytesRead}, p))
		}
		return
	}
	a.out.status(fmt.Sprintf("[%s] read %d / %d packs, %s, %s", formatDuration(p.Elapsed), p.Packs, p.PacksTotal, formatBytes(p.BytesRead), formatRate(p.BytesRead, p.Elapsed)))
}

// restoreProgress prints the progress of a restore against the totals
// known so far.
func restoreProgress(a *App, p app.Progress) {
	if a.g.json {
		if a.out.jsonStatusDue(time.Now()) {
			a.out.jsonLine(withETA(map[string]any{"message_type": "status", "seconds_elapsed": int(p.Elapsed.Seconds()), "files_restored": p.Files,
				"total_files": p.FilesTotal, "bytes_restored": p.Bytes, "total_bytes": p.BytesTotal}, p))
		}
		return
	}
	pct, eta := 0.0, "-"
	if p.BytesTotal > 0 {
		pct = float64(p.Bytes) / float64(p.BytesTotal) * 100
		if p.Bytes > 0 {
			eta = formatDuration(time.Duration(float64(p.Elapsed) * float64(p.BytesTotal-p.Bytes) / float64(p.Bytes)))
		}
	}
	a.out.status(fmt.Sprintf("[%s] %5.1f%%  %d / %d files  %s / %s  %s  ETA %s", formatDuration(p.Elapsed), pct, p.Files, p.FilesTotal,
		formatBytes(p.Bytes), formatBytes(p.BytesTotal), formatRate(p.Bytes, p.Elapsed), eta))
}

// withETA adds restic's percent_done (0 to 1) and seconds_remaining to a
// JSON status line, when the total is known (and something is done).
func withETA(m map[string]any, p app.Progress) map[string]any {
	if frac, left, ok := p.Done(); ok {
		m["percent_done"] = frac
		if left >= 0 {
			m["seconds_remaining"] = int(left.Round(time.Second).Seconds())
		}
	}
	return m
}

// maintenanceProgress prints the progress of a copy (snapshots done of
// those to copy) or a prune (its phase).
func maintenanceProgress(a *App, p app.Progress) {
	if a.g.json {
		if p.Final || !a.out.jsonStatusDue(time.Now()) {
			return
		}
		m := map[string]any{"message_type": "status", "action": p.Op, "seconds_elapsed": int(p.Elapsed.Seconds())}
		if p.Op == "prune" {
			m["phase"] = p.Current
		} else {
			m["snapshots_done"], m["total_snapshots"], m["bytes_added"] = p.Files, p.FilesTotal, p.BytesAdded
		}
		a.out.jsonLine(withETA(m, p))
		return
	}
	if p.Final {
		a.out.doneStatus()
		return
	}
	if p.Op == "prune" {
		a.out.status(fmt.Sprintf("[%s] prune: %s", formatDuration(p.Elapsed), p.Current))
		return
	}
	a.out.status(fmt.Sprintf("[%s] copy: %d / %d snapshots, %s added, %s", formatDuration(p.Elapsed), p.Files, p.FilesTotal,
		formatBytes(p.BytesAdded), formatRate(p.BytesAdded, p.Elapsed)))
}
