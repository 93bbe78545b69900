// Command s3report renders the CSV that bench/s3/run.sh writes as
// Markdown tables: median wall and CPU times of backup and restore per
// tool, the ratios restic / bunker, and the S3 requests per GB of source
// data by kind.
//
//	s3report -csv bench/work/runs/s3-<stamp>/raw.csv -meta bench/work/runs/s3-<stamp>/meta.txt
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
)

// row is one line of the CSV, by column name.
type row map[string]string

func (r row) f(col string) (float64, bool) {
	v, err := strconv.ParseFloat(r[col], 64)
	return v, err == nil && r[col] != ""
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtNum prints a value with about three significant digits.
func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

type report struct {
	rows  []row
	tools []string
	gb    float64 // source size in 10^9 bytes
}

// values returns column col of the successful rows of (mode, tool, step),
// in round order.
func (r *report) values(mode, tool, step string, col func(row) (float64, bool)) []float64 {
	var out []float64
	for _, x := range r.rows {
		if x["mode"] != mode || x["tool"] != tool || x["step"] != step || x["exit_code"] != "0" {
			continue
		}
		if v, ok := col(x); ok {
			out = append(out, v)
		}
	}
	return out
}

func colOf(name string) func(row) (float64, bool) {
	return func(x row) (float64, bool) { return x.f(name) }
}

func cpu(x row) (float64, bool) {
	u, ok1 := x.f("user_s")
	s, ok2 := x.f("sys_s")
	return u + s, ok1 && ok2
}

func (r *report) has(mode string) bool {
	for _, x := range r.rows {
		if x["mode"] == mode {
			return true
		}
	}
	return false
}

// timesTable writes the medians of wall, CPU and server CPU per tool and
// step, with the ratio of every other tool to bunker.
func (r *report) timesTable(w io.Writer, mode string) {
	others := []string{}
	for _, t := range r.tools {
		if t != "bunker" {
			others = append(others, t)
		}
	}
	fmt.Fprintf(w, "| Median over rounds | %s |", strings.Join(r.tools, " | "))
	for _, o := range others {
		fmt.Fprintf(w, " %s / bunker |", o)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|")
	for range len(r.tools) + len(others) {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	lines := []struct {
		label, step string
		col         func(row) (float64, bool)
	}{
		{"Backup, wall s", "backup", colOf("wall_s")},
		{"Restore, wall s", "restore", colOf("wall_s")},
		{"Backup, client CPU s (user+sys)", "backup", cpu},
		{"Restore, client CPU s (user+sys)", "restore", cpu},
		{"Backup, versitygw CPU s", "backup", colOf("server_cpu_s")},
		{"Restore, versitygw CPU s", "restore", colOf("server_cpu_s")},
		{"Backup, proxy CPU s", "backup", colOf("proxy_cpu_s")},
		{"Restore, proxy CPU s", "restore", colOf("proxy_cpu_s")},
		{"Backup, peak RSS MiB", "backup", func(x row) (float64, bool) { v, ok := x.f("maxrss_kb"); return v / 1024, ok }},
		{"Restore, peak RSS MiB", "restore", func(x row) (float64, bool) { v, ok := x.f("maxrss_kb"); return v / 1024, ok }},
		{"Init, wall s", "init", colOf("wall_s")},
	}
	for _, l := range lines {
		if mode == "direct" && strings.Contains(l.label, "proxy") {
			continue
		}
		med := map[string]float64{}
		fmt.Fprintf(w, "| %s |", l.label)
		for _, t := range r.tools {
			vs := r.values(mode, t, l.step, l.col)
			if len(vs) == 0 {
				fmt.Fprint(w, " – |")
				continue
			}
			med[t] = median(vs)
			fmt.Fprintf(w, " %s |", fmtNum(med[t]))
		}
		for _, o := range others {
			if med["bunker"] > 0 && med[o] > 0 {
				fmt.Fprintf(w, " %.2fx |", med[o]/med["bunker"])
			} else {
				fmt.Fprint(w, " |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Per round (wall s):")
	fmt.Fprintln(w)
	for _, step := range []string{"backup", "restore"} {
		for _, t := range r.tools {
			vs := r.values(mode, t, step, colOf("wall_s"))
			ss := make([]string, len(vs))
			for i, v := range vs {
				ss[i] = fmtNum(v)
			}
			fmt.Fprintf(w, "- %s %s: %s\n", t, step, strings.Join(ss, ", "))
		}
	}
	fmt.Fprintln(w)
}

// requestsTable writes the median request counts of each step per GB of
// source data.
func (r *report) requestsTable(w io.Writer) {
	kinds := []string{"put", "post", "get", "ranged", "head", "list", "delete", "bucket", "errors"}
	fmt.Fprintf(w, "Requests per GB of source data (%.3f GB = 10^9 bytes), median over the proxied rounds; "+
		"\"ranged\" is the part of GET with a Range header, \"bucket\" the bucket-level requests that are not listings, \"errors\" the responses with status >= 400 (mostly expected 404s of existence probes; not in \"all\").\n\n", r.gb)
	fmt.Fprintf(w, "| Tool, step | %s | all | MB up | MB down |\n", strings.Join(kinds, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(kinds)+3))
	for _, step := range []string{"init", "backup", "restore"} {
		for _, t := range r.tools {
			if len(r.values("proxy", t, step, colOf("put"))) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s %s |", t, step)
			all := 0.0
			for _, k := range kinds {
				v := median(r.values("proxy", t, step, colOf(k)))
				if k != "ranged" && k != "errors" {
					all += v
				}
				fmt.Fprintf(w, " %s |", perGB(v, r.gb, step))
			}
			fmt.Fprintf(w, " %s |", perGB(all, r.gb, step))
			for _, k := range []string{"bytes_up", "bytes_down"} {
				fmt.Fprintf(w, " %.1f |", median(r.values("proxy", t, step, colOf(k)))/1e6)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "(Init rows are absolute counts, not per GB: init does not depend on the data.)")
	fmt.Fprintln(w)
}

func perGB(v, gb float64, step string) string {
	if step == "init" {
		return fmtNum(v)
	}
	return fmtNum(v / gb)
}

func main() {
	csvPath := flag.String("csv", "", "raw.csv of a bench/s3/run.sh run")
	metaPath := flag.String("meta", "", "meta.txt of the run")
	flag.Parse()
	log.SetFlags(0)
	r := &report{}
	meta := readMeta(*metaPath)
	if b, err := strconv.ParseFloat(metaValue(meta, "source bytes"), 64); err == nil {
		r.gb = b / 1e9
	}
	f, err := os.Open(*csvPath)
	if err != nil {
		log.Fatalf("s3report: %v", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) == 0 {
		log.Fatalf("s3report: %s: %v", *csvPath, err)
	}
	seen := map[string]bool{}
	for _, rec := range recs[1:] {
		x := row{}
		for i, name := range recs[0] {
			if i < len(rec) {
				x[name] = rec[i]
			}
		}
		r.rows = append(r.rows, x)
		if !seen[x["tool"]] {
			seen[x["tool"]] = true
			r.tools = append(r.tools, x["tool"])
		}
	}
	sort.SliceStable(r.tools, func(i, j int) bool { return r.tools[i] == "bunker" && r.tools[j] != "bunker" })

	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintln(w, "# S3 on loopback: Bunker and restic through versitygw")
	fmt.Fprintln(w)
	for _, kv := range meta {
		fmt.Fprintf(w, "- %s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintln(w)
	if r.has("proxy") {
		fmt.Fprintln(w, "## Through the counting proxy")
		fmt.Fprintln(w)
		r.timesTable(w, "proxy")
		r.requestsTable(w)
	}
	if r.has("direct") {
		fmt.Fprintln(w, "## Direct to versitygw (no proxy)")
		fmt.Fprintln(w)
		r.timesTable(w, "direct")
	}
	fmt.Fprintln(w, "## Checks")
	fmt.Fprintln(w)
	for _, t := range r.tools {
		ok, n := 0, 0
		var failed []string
		for _, x := range r.rows {
			if x["tool"] != t {
				continue
			}
			switch {
			case x["step"] == "restore_matches":
				n++
				if x["exit_code"] == "0" {
					ok++
				}
			case x["exit_code"] != "0" && x["step"] != "repo_bytes":
				failed = append(failed, fmt.Sprintf("%s round %s %s exit %s", x["mode"], x["round"], x["step"], x["exit_code"]))
			}
		}
		repo := median(r.values("proxy", t, "repo_bytes", colOf("bytes")))
		if repo == 0 {
			repo = median(r.values("direct", t, "repo_bytes", colOf("bytes")))
		}
		fmt.Fprintf(w, "- %s: restored tree matches the source (files, bytes, dirs, symlinks) in %d of %d restores; bucket after backup %.1f MB",
			t, ok, n, repo/1e6)
		if len(failed) > 0 {
			fmt.Fprintf(w, "; FAILED: %s", strings.Join(failed, "; "))
		}
		fmt.Fprintln(w)
	}
}

// readMeta reads the tab-separated key/value lines of meta.txt, in order.
func readMeta(path string) [][2]string {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatalf("s3report: %v", err)
	}
	var out [][2]string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		k, v, _ := strings.Cut(line, "\t")
		out = append(out, [2]string{k, v})
	}
	return out
}

func metaValue(meta [][2]string, key string) string {
	for _, kv := range meta {
		if kv[0] == key {
			return kv[1]
		}
	}
	return ""
}
