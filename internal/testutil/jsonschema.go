package testutil

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// JSONSchema is the table of docs/JSON.md: for a command (a command path,
// "pg wal-push", sometimes with a flag, "restore postgres --physical",
// or "any") and a message_type, the fields its JSON lines always have.
type JSONSchema map[[2]string][]string

// ParseJSONSchema parses the table of docs/JSON.md, rows | `command` |
// `type` | `field`, … |. A row whose fields are "same as `other`" has the
// fields of other's line of that type.
func ParseJSONSchema(path string) (JSONSchema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z -]+)` \\| `([a-z_]+)` \\| (.*) \\|$")
	field := regexp.MustCompile("`([a-z_]+)`")
	same := regexp.MustCompile("^same as `([a-z -]+)`")
	out := JSONSchema{}
	alias := map[[2]string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		key := [2]string{m[1], m[2]}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s: two rows for %s %s", path, m[1], m[2])
		}
		if sm := same.FindStringSubmatch(m[3]); sm != nil {
			alias[key] = sm[1]
			out[key] = nil
			continue
		}
		var fields []string
		for _, fm := range field.FindAllStringSubmatch(m[3], -1) {
			fields = append(fields, fm[1])
		}
		out[key] = fields
	}
	for key, other := range alias {
		fields, ok := out[[2]string{other, key[1]}]
		if !ok {
			return nil, fmt.Errorf("%s: %s %s is the same as %s's, which has no %s line", path, key[0], key[1], other, key[1])
		}
		out[key] = fields
	}
	if len(out) < 20 {
		return nil, fmt.Errorf("%s: only %d rows found", path, len(out))
	}
	return out, sc.Err()
}

var (
	schemaOnce sync.Once
	schemaRows JSONSchema
	schemaErr  error
)

// LoadJSONSchema parses docs/JSON.md (path relative to the test's
// package) once per test process.
func LoadJSONSchema(path string) (JSONSchema, error) {
	schemaOnce.Do(func() { schemaRows, schemaErr = ParseJSONSchema(path) })
	return schemaRows, schemaErr
}

// Fields finds the row of a line of type typ printed by command run with
// args: the row of the command with a flag it was given ("restore
// postgres --physical"), else of the command, else of its parents
// ("backup" for "backup postgres"). Errors, warnings and log lines are
// any command's.
func (s JSONSchema) Fields(command string, args []string, typ string) ([2]string, []string, bool) {
	if typ == "error" || typ == "warning" || typ == "log" {
		command = "any"
	}
	for c := command; c != ""; {
		for k, fields := range s {
			if flag, ok := strings.CutPrefix(k[0], c+" "); ok && k[1] == typ && strings.HasPrefix(flag, "--") && hasFlag(args, flag) {
				return k, fields, true
			}
		}
		if fields, ok := s[[2]string{c, typ}]; ok {
			return [2]string{c, typ}, fields, true
		}
		i := strings.LastIndexByte(c, ' ')
		if i < 0 {
			break
		}
		c = c[:i]
	}
	return [2]string{}, nil, false
}

// hasFlag reports whether args give flag, alone or as flag=value.
func hasFlag(args []string, flag string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") })
}

// CheckLines checks what one run of command (with args) printed: stdout
// holds only JSON objects whose message_type the table lists for the
// command, with every field it names; errors, warnings and log lines are
// on stderr (which may also carry a library's text lines). seen, when
// not nil, gets the rows the lines matched.
func (s JSONSchema) CheckLines(t testing.TB, seen map[[2]string]bool, command string, args []string, stdout, stderr string) {
	t.Helper()
	for _, out := range [][2]string{{"stdout", stdout}, {"stderr", stderr}} {
		stream := out[0]
		for _, line := range strings.Split(strings.TrimSpace(out[1]), "\n") {
			if line == "" || (stream == "stderr" && !strings.HasPrefix(line, "{")) {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("bunker %s: %s line is not a JSON object: %q", strings.Join(args, " "), stream, line)
				continue
			}
			typ, _ := m["message_type"].(string)
			onErr := typ == "error" || typ == "warning" || typ == "log"
			if onErr != (stream == "stderr") {
				t.Errorf("bunker %s: a %q line on %s: %s", strings.Join(args, " "), typ, stream, line)
			}
			key, want, ok := s.Fields(command, args, typ)
			if !ok {
				t.Errorf("bunker %s: message_type %q is not in docs/JSON.md for %s: %s", strings.Join(args, " "), typ, command, line)
				continue
			}
			if seen != nil {
				seen[key] = true
			}
			for _, f := range want {
				if _, ok := m[f]; !ok {
					t.Errorf("bunker %s: %s line without %q: %s", strings.Join(args, " "), typ, f, line)
				}
			}
		}
	}
}

// NoJSONLines reports whether a command's --json output is not JSON
// lines: cat prints one indented document, dump a file's bytes, wal-fetch
// nothing; help, completion and generate write text for shells and
// people.
func NoJSONLines(path string) bool {
	first, _, _ := strings.Cut(path, " ")
	return slices.Contains([]string{"cat", "dump", "pg wal-fetch"}, path) ||
		slices.Contains([]string{"help", "completion", "generate", "__complete", "__completeNoDesc"}, first)
}

// JSONRuns records the commands a test process ran with --json and
// checked, for the check that every command was.
type JSONRuns struct{ m sync.Map }

// Add records a run of the command path.
func (r *JSONRuns) Add(path string) { r.m.Store(path, true) }

// Check checks, when args has --json, what a run printed against the
// table of docs/JSON.md at schemaPath, as the command path (a function of
// args, called only then) finds its rows, and records the run.
func (r *JSONRuns) Check(t testing.TB, schemaPath string, args []string, path func([]string) string, stdout, stderr string) {
	t.Helper()
	if !slices.Contains(args, "--json") {
		return
	}
	p := path(args)
	if p == "" || NoJSONLines(p) {
		return
	}
	schema, err := LoadJSONSchema(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	r.Add(p)
	schema.CheckLines(t, nil, p, args, stdout, stderr)
}

// Missing lists the paths of all that print JSON lines and were never
// recorded.
func (r *JSONRuns) Missing(all []string) []string {
	var out []string
	for _, p := range all {
		if _, ok := r.m.Load(p); !ok && !NoJSONLines(p) {
			out = append(out, p)
		}
	}
	return out
}

// WholeRun reports whether every test of the package runs with the
// servers required: no -run or -skip filter, not -short, and
// BUNKER_REQUIRE_SERVERS set (so no database, cluster or FUSE test skips
// itself). Only then can a TestMain tell that a command never ran.
func WholeRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short() && os.Getenv("BUNKER_REQUIRE_SERVERS") != ""
}
