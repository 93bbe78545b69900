package layers

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/bunkerbackup/bunker/"

// leaves are small packages every layer may use: they import nothing of
// ours but each other.
var leaves = []string{
	"internal/bufpool", "internal/fsmeta", "internal/safefs", "internal/timespec", "internal/redact", "internal/units",
}

// rules says, for the packages under a prefix, which of our packages
// they may depend on, directly or not (besides themselves and the
// leaves).
var rules = []struct {
	under   string
	mayUse  []string
	because string
}{
	{"internal/storage", nil,
		"storage is the bottom layer: backends and decorators"},
	{"internal/engine", []string{"internal/storage"},
		"the engine knows the storage interface only"},
	{"internal/source", nil,
		"sources know the source contracts only, never the engine"},
	{"internal/exclude", []string{"internal/engine", "internal/storage"}, "exclusion serves backups, above the engine"},
	{"internal/plan", nil, "plans are data"},
	{"internal/state", nil, "the run history is data"},
	{"internal/monitor", []string{"internal/plan"}, "measurement is below the front ends"},
	{"internal/notify", []string{"internal/plan"}, "notification is below the front ends"},
	{"internal/app", []string{"internal/storage", "internal/engine", "internal/source", "internal/exclude",
		"internal/plan", "internal/state", "internal/monitor", "internal/notify"},
		"the use cases are below every front end"},
	{"internal/daemon", []string{"internal/plan", "internal/state", "internal/monitor", "internal/notify",
		"internal/app", "internal/storage", "internal/engine", "internal/source", "internal/exclude", "internal/web"},
		"the daemon calls use cases, never the CLI"},
	{"internal/operator", []string{"internal/app", "internal/storage", "internal/engine", "internal/source",
		"internal/exclude", "internal/plan", "internal/state", "internal/monitor", "internal/notify"},
		"the operator calls use cases, never the CLI"},
	{"internal/web", nil, "the dashboard is served, not a caller"},
}

// TestLayers fails when a package depends on one its layer may not use:
// the engine, storage or a source on anything above them, or the daemon
// or operator on the CLI.
func TestLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps=false", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", mod+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, r := range rules {
			if !within(pkg, r.under) {
				continue
			}
			checked++
			for _, dep := range fields[1:] {
				if !strings.HasPrefix(dep, mod) {
					continue
				}
				d := strings.TrimPrefix(dep, mod)
				if !allowed(d, r.under, r.mayUse) {
					t.Errorf("%s depends on %s: %s", pkg, d, r.because)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d packages checked: is the module path %q right?", checked, mod)
	}
}

func allowed(dep, self string, mayUse []string) bool {
	if within(dep, self) {
		return true
	}
	for _, l := range leaves {
		if within(dep, l) {
			return true
		}
	}
	for _, m := range mayUse {
		if within(dep, m) {
			return true
		}
	}
	return false
}

// within reports whether pkg is dir or below it.
func within(pkg, dir string) bool {
	return pkg == dir || strings.HasPrefix(pkg, dir+"/")
}
