package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// sample is one row of the raw CSV written by run.sh.
type sample struct {
	round     int
	tool      string
	step      string
	wall      float64 // seconds
	cpu       float64 // user+sys seconds
	maxRSSKB  float64
	exitCode  int
	ok        bool
	bytes     float64
	hasBytes  bool
	hasTiming bool
}

// Steps timed by run.sh, in report order.
var timedSteps = []struct{ key, label string }{
	{"backup_initial", "Initial backup"},
	{"backup_nochange", "No-change backup"},
	{"backup_change", "1%-change backup"},
	{"restore", "Restore latest snapshot"},
	{"verify", "Verify, reading all data"},
}

type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n_ok"`
	Failed int     `json:"n_failed"`
}

type toolStats struct {
	Label     string           `json:"label"`
	Wall      map[string]*stat `json:"wall_seconds"`
	CPU       map[string]*stat `json:"cpu_seconds"`
	RSS       map[string]*stat `json:"peak_rss_kb"`
	Bytes     map[string]*stat `json:"bytes"`
	PeakRSSKB float64          `json:"peak_rss_kb_max_over_steps"`
	Derived   map[string]*stat `json:"derived"`
}

type target struct {
	Name      string  `json:"name"`
	Peer      string  `json:"peer"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Threshold string  `json:"threshold"`
	Pass      bool    `json:"pass"`
	Known     bool    `json:"known"`
}

type report struct {
	Meta    [][2]string                   `json:"-"`
	MetaMap map[string]string             `json:"meta"`
	Tools   []string                      `json:"tools"`
	Stats   map[string]*toolStats         `json:"stats"`
	Ratios  map[string]map[string]float64 `json:"ratios_peer_over_bunker"`
	Targets []target                      `json:"targets"`
	Raw     []map[string]any              `json:"raw"`
}

func cmdSummarize(args []string) error {
	fl := flag.NewFlagSet("summarize", flag.ExitOnError)
	csvPath := fl.String("csv", "", "raw CSV from run.sh")
	metaPath := fl.String("meta", "", "meta file (key<TAB>value lines)")
	mdPath := fl.String("md", "", "Markdown output")
	jsonPath := fl.String("json", "", "JSON output")
	floorPath := fl.String("floor", "", "Markdown from bench/floor to append (optional)")
	_ = fl.Parse(args)
	if *csvPath == "" {
		return errors.New("-csv is required")
	}
	samples, err := readSamples(*csvPath)
	if err != nil {
		return err
	}
	var meta [][2]string
	if *metaPath != "" {
		if meta, err = readMeta(*metaPath); err != nil {
			return err
		}
	}
	rep := build(samples, meta)
	if *jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	var floor []byte
	if *floorPath != "" {
		if floor, err = os.ReadFile(*floorPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	md := renderMarkdown(rep, samples, floor)
	if *mdPath != "" {
		return os.WriteFile(*mdPath, []byte(md), 0o644)
	}
	_, err = io.WriteString(os.Stdout, md)
	return err
}

func readSamples(path string) ([]sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, errors.New("empty CSV")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"round", "tool", "step", "wall_s", "user_s", "sys_s", "maxrss_kb", "exit_code", "ok", "bytes"} {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("CSV lacks column %q", h)
		}
	}
	var out []sample
	for _, rec := range recs[1:] {
		get := func(h string) string { return strings.TrimSpace(rec[col[h]]) }
		num := func(h string) (float64, bool) {
			v, err := strconv.ParseFloat(get(h), 64)
			return v, err == nil
		}
		s := sample{tool: get("tool"), step: get("step")}
		s.round, _ = strconv.Atoi(get("round"))
		var okW, okU, okS bool
		var u, sy float64
		s.wall, okW = num("wall_s")
		u, okU = num("user_s")
		sy, okS = num("sys_s")
		s.cpu = u + sy
		s.hasTiming = okW && okU && okS
		s.maxRSSKB, _ = num("maxrss_kb")
		s.exitCode, _ = strconv.Atoi(get("exit_code"))
		s.ok = get("ok") == "1"
		s.bytes, s.hasBytes = num("bytes")
		out = append(out, s)
	}
	return out, nil
}

func readMeta(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mkStat(xs []float64, failed int) *stat {
	st := &stat{Median: median(xs), N: len(xs), Failed: failed, Min: math.NaN(), Max: math.NaN()}
	if len(xs) > 0 {
		st.Min, st.Max = slices.Min(xs), slices.Max(xs)
	}
	return st
}

// peers are the tools compared with bunker, in report order.
func orderTools(samples []sample, meta map[string]string) []string {
	var tools []string
	if t := meta["tools"]; t != "" {
		tools = strings.Fields(t)
	}
	for _, s := range samples {
		if !slices.Contains(tools, s.tool) && s.tool != "cp" {
			tools = append(tools, s.tool)
		}
	}
	return tools
}

func build(samples []sample, meta [][2]string) *report {
	mm := map[string]string{}
	for _, kv := range meta {
		mm[kv[0]] = kv[1]
	}
	rep := &report{Meta: meta, MetaMap: mm, Stats: map[string]*toolStats{}, Ratios: map[string]map[string]float64{}}
	rep.Tools = orderTools(samples, mm)
	for _, t := range rep.Tools {
		ts := &toolStats{Label: t, Wall: map[string]*stat{}, CPU: map[string]*stat{}, RSS: map[string]*stat{},
			Bytes: map[string]*stat{}, Derived: map[string]*stat{}}
		if l := mm["label."+t]; l != "" {
			ts.Label = l
		}
		type acc struct {
			wall, cpu, rss, bytes []float64
			failed                int
		}
		steps := map[string]*acc{}
		byRound := map[int]map[string]sample{}
		for _, s := range samples {
			if s.tool != t {
				continue
			}
			if byRound[s.round] == nil {
				byRound[s.round] = map[string]sample{}
			}
			byRound[s.round][s.step] = s
			a := steps[s.step]
			if a == nil {
				a = &acc{}
				steps[s.step] = a
			}
			if !s.ok {
				a.failed++
				continue
			}
			if s.hasTiming {
				a.wall = append(a.wall, s.wall)
				a.cpu = append(a.cpu, s.cpu)
				a.rss = append(a.rss, s.maxRSSKB)
			}
			if s.hasBytes {
				a.bytes = append(a.bytes, s.bytes)
			}
		}
		for step, a := range steps {
			if len(a.wall) > 0 || a.failed > 0 {
				ts.Wall[step] = mkStat(a.wall, a.failed)
				ts.CPU[step] = mkStat(a.cpu, a.failed)
				ts.RSS[step] = mkStat(a.rss, a.failed)
			}
			if len(a.bytes) > 0 {
				ts.Bytes[step] = mkStat(a.bytes, 0)
			}
		}
		// Per-round derived values: growth and the paired restore/cp ratio.
		var growth, growthNC, rcp []float64
		for _, m := range byRound {
			a, okA := m["size_after_nochange"]
			b, okB := m["size_after_change"]
			c, okC := m["size_after_initial"]
			if okA && okB && a.ok && b.ok {
				growth = append(growth, b.bytes-a.bytes)
			}
			if okA && okC && a.ok && c.ok {
				growthNC = append(growthNC, a.bytes-c.bytes)
			}
			r, okR := m["restore"]
			cp, okP := m["cp_a"]
			if okR && okP && r.ok && cp.ok && cp.wall > 0 {
				rcp = append(rcp, r.wall/cp.wall)
			}
		}
		if len(growth) > 0 {
			ts.Derived["repo_growth_change_bytes"] = mkStat(growth, 0)
		}
		if len(growthNC) > 0 {
			ts.Derived["repo_growth_nochange_bytes"] = mkStat(growthNC, 0)
		}
		if len(rcp) > 0 {
			ts.Derived["restore_over_cp"] = mkStat(rcp, 0)
		}
		for _, st := range timedSteps {
			if r := ts.RSS[st.key]; r != nil && r.N > 0 && r.Median > ts.PeakRSSKB {
				ts.PeakRSSKB = r.Median
			}
		}
		rep.Stats[t] = ts
	}
	b := rep.Stats["bunker"]
	if b == nil {
		return rep
	}
	for _, p := range rep.Tools {
		if p == "bunker" {
			continue
		}
		ps := rep.Stats[p]
		r := map[string]float64{}
		for _, st := range timedSteps {
			r[st.key] = ratio(wallMed(ps, st.key), wallMed(b, st.key))
		}
		r["peak_rss"] = ratio(ps.PeakRSSKB, b.PeakRSSKB)
		r["size_after_initial"] = ratio(bytesMed(ps, "size_after_initial"), bytesMed(b, "size_after_initial"))
		r["repo_growth_change"] = ratio(derivedMed(ps, "repo_growth_change_bytes"), derivedMed(b, "repo_growth_change_bytes"))
		rep.Ratios[p] = r
	}
	rep.Targets = evalTargets(rep)
	for _, s := range samples {
		rep.Raw = append(rep.Raw, map[string]any{"round": s.round, "tool": s.tool, "step": s.step,
			"wall_s": jsonNum(s.wall, s.hasTiming), "cpu_s": jsonNum(s.cpu, s.hasTiming), "maxrss_kb": jsonNum(s.maxRSSKB, s.hasTiming),
			"exit_code": s.exitCode, "ok": s.ok, "bytes": jsonNum(s.bytes, s.hasBytes)})
	}
	// NaN is not valid JSON: replace it in the stats.
	for _, ts := range rep.Stats {
		for _, m := range []map[string]*stat{ts.Wall, ts.CPU, ts.RSS, ts.Bytes, ts.Derived} {
			for _, st := range m {
				st.Median, st.Min, st.Max = fin(st.Median), fin(st.Min), fin(st.Max)
			}
		}
	}
	for _, r := range rep.Ratios {
		for k, v := range r {
			r[k] = fin(v)
		}
	}
	for i := range rep.Targets {
		rep.Targets[i].Value = fin(rep.Targets[i].Value)
	}
	return rep
}

func jsonNum(v float64, ok bool) any {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// fin maps NaN and Inf to -1 (JSON has neither); the Markdown is rendered
// before this and shows them as n/a.
func fin(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}

func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b <= 0 || a < 0 {
		return math.NaN()
	}
	return a / b
}

func wallMed(ts *toolStats, step string) float64 {
	if ts == nil || ts.Wall[step] == nil || ts.Wall[step].N == 0 {
		return math.NaN()
	}
	return ts.Wall[step].Median
}

func bytesMed(ts *toolStats, step string) float64 {
	if ts == nil || ts.Bytes[step] == nil || ts.Bytes[step].N == 0 {
		return math.NaN()
	}
	return ts.Bytes[step].Median
}

func derivedMed(ts *toolStats, key string) float64 {
	if ts == nil || ts.Derived[key] == nil || ts.Derived[key].N == 0 {
		return math.NaN()
	}
	return ts.Derived[key].Median
}

func isBorg(t string) bool { return strings.HasPrefix(t, "borg") }

// evalTargets checks the goals of the performance issue; see
// docs/PERFORMANCE.md. Every borg version present counts as "borg".
func evalTargets(rep *report) []target {
	b := rep.Stats["bunker"]
	var out []target
	add := func(name, peer, metric string, value float64, threshold string, pass func(float64) bool) {
		t := target{Name: name, Peer: peer, Metric: metric, Value: value, Threshold: threshold}
		if !math.IsNaN(value) {
			t.Known = true
			t.Pass = pass(value)
		}
		out = append(out, t)
	}
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	greater := func(x float64) func(float64) bool { return func(v float64) bool { return v > x } }
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	for _, p := range rep.Tools {
		if p == "bunker" {
			continue
		}
		r := rep.Ratios[p]
		lbl := rep.Stats[p].Label
		switch {
		case p == "restic":
			add("Initial backup >= 2.5x faster than restic", lbl, "time ratio restic/bunker", r["backup_initial"], ">= 2.5", atLeast(2.5))
		case isBorg(p):
			add("Initial backup >= 2x faster than borg", lbl, "time ratio "+p+"/bunker", r["backup_initial"], ">= 2", atLeast(2))
		default:
			continue
		}
	}
	for _, step := range []struct{ key, name string }{{"backup_nochange", "No-change backup faster than restic and borg"}, {"backup_change", "1%-change backup faster than restic and borg"}} {
		for _, p := range rep.Tools {
			if p == "restic" || isBorg(p) {
				add(step.name, rep.Stats[p].Label, "time ratio "+p+"/bunker", rep.Ratios[p][step.key], "> 1", greater(1))
			}
		}
	}
	for _, p := range rep.Tools {
		if p == "restic" || isBorg(p) {
			add("Restore >= 2x faster than restic and borg", rep.Stats[p].Label, "time ratio "+p+"/bunker", rep.Ratios[p]["restore"], ">= 2", atLeast(2))
		}
	}
	add("Restore within 1.3x of cp -a", "cp -a", "time ratio bunker restore / cp -a (paired per round)", derivedMed(b, "restore_over_cp"), "<= 1.3", atMost(1.3))
	if _, ok := rep.Stats["restic"]; ok {
		add("Verify at least as fast as restic", rep.Stats["restic"].Label, "time ratio restic/bunker", rep.Ratios["restic"]["verify"], ">= 1", atLeast(1))
		add("Peak memory <= restic's", rep.Stats["restic"].Label, "peak RSS ratio restic/bunker (max over the timed steps)", rep.Ratios["restic"]["peak_rss"], ">= 1", atLeast(1))
		add("Repo growth after the 1% change <= restic's", rep.Stats["restic"].Label, "growth ratio restic/bunker", rep.Ratios["restic"]["repo_growth_change"], ">= 1", atLeast(1))
	}
	return out
}

func fmtSec(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", v)
}

func fmtMB(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", v/1e6)
}

func fmtMiB(kb float64) string {
	if math.IsNaN(kb) || kb <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", kb/1024)
}

func cell(st *stat, f func(float64) string) string {
	if st == nil {
		return "n/a"
	}
	if st.N == 0 {
		return fmt.Sprintf("FAILED (%d)", st.Failed)
	}
	s := f(st.Median)
	if st.Failed > 0 {
		s += fmt.Sprintf(" (%d failed)", st.Failed)
	}
	return s
}

func renderMarkdown(rep *report, samples []sample, floor []byte) string {
	var w strings.Builder
	mm := rep.MetaMap
	title := "Bunker side-by-side benchmark"
	if mm["status"] != "" {
		title += " (" + mm["status"] + ")"
	}
	fmt.Fprintf(&w, "# %s\n\n", title)
	if len(rep.Meta) > 0 {
		w.WriteString("| | |\n|---|---|\n")
		for _, kv := range rep.Meta {
			if strings.HasPrefix(kv[0], "label.") || kv[0] == "tools" {
				continue
			}
			v := strings.ReplaceAll(kv[1], "|", "\\|")
			if kv[0] == "command" {
				v = "`" + v + "`"
			}
			fmt.Fprintf(&w, "| %s | %s |\n", kv[0], v)
		}
		w.WriteString("\n")
	}
	peers := []string{}
	for _, t := range rep.Tools {
		if t != "bunker" {
			peers = append(peers, t)
		}
	}
	label := func(t string) string { return rep.Stats[t].Label }
	header := func(first string) {
		fmt.Fprintf(&w, "| %s |", first)
		for _, t := range rep.Tools {
			fmt.Fprintf(&w, " %s |", label(t))
		}
		if _, ok := rep.Stats["bunker"]; ok {
			for _, p := range peers {
				fmt.Fprintf(&w, " %s / bunker |", p)
			}
		}
		w.WriteString("\n|---|")
		for range rep.Tools {
			w.WriteString("---:|")
		}
		if _, ok := rep.Stats["bunker"]; ok {
			for range peers {
				w.WriteString("---:|")
			}
		}
		w.WriteString("\n")
	}
	b := rep.Stats["bunker"]
	row := func(name string, get func(ts *toolStats) *stat, f func(float64) string) {
		fmt.Fprintf(&w, "| %s |", name)
		for _, t := range rep.Tools {
			fmt.Fprintf(&w, " %s |", cell(get(rep.Stats[t]), f))
		}
		if b != nil {
			bs := get(b)
			for _, p := range peers {
				ps := get(rep.Stats[p])
				v := math.NaN()
				if bs != nil && ps != nil && bs.N > 0 && ps.N > 0 {
					v = ratio(ps.Median, bs.Median)
				}
				fmt.Fprintf(&w, " %s |", fmtRatio(v))
			}
		}
		w.WriteString("\n")
	}
	nRounds := 0
	for _, s := range samples {
		nRounds = max(nRounds, s.round)
	}
	fmt.Fprintf(&w, "## Results: median over %d round(s)\n\n", nRounds)
	w.WriteString("Wall-clock seconds (lower is better); a ratio above 1 means Bunker is faster / smaller.\n\n")
	header("Operation (wall s)")
	for _, st := range timedSteps {
		k := st.key
		row(st.label, func(ts *toolStats) *stat { return ts.Wall[k] }, fmtSec)
	}
	row("cp -a of the same tree (paired with restore)", func(ts *toolStats) *stat { return ts.Wall["cp_a"] }, fmtSec)
	fmt.Fprintf(&w, "| Restore / cp -a (paired per round) |")
	for _, t := range rep.Tools {
		fmt.Fprintf(&w, " %s |", cell(rep.Stats[t].Derived["restore_over_cp"], fmtRatio))
	}
	if b != nil {
		for range peers {
			w.WriteString(" |")
		}
	}
	w.WriteString("\n")
	fmt.Fprintf(&w, "| Restored tree matches cp -a (files, bytes, dirs, symlinks) |")
	for _, t := range rep.Tools {
		okN, n := 0, 0
		for _, s := range samples {
			if s.tool == t && s.step == "restore_matches_cp" {
				n++
				if s.ok {
					okN++
				}
			}
		}
		if n == 0 {
			w.WriteString(" n/a |")
		} else {
			fmt.Fprintf(&w, " %d/%d |", okN, n)
		}
	}
	if b != nil {
		for range peers {
			w.WriteString(" |")
		}
	}
	w.WriteString("\n\n")

	header("Repository (MB, 10^6 bytes)")
	row("Size after initial backup", func(ts *toolStats) *stat { return ts.Bytes["size_after_initial"] }, fmtMB)
	row("Growth from the no-change backup", func(ts *toolStats) *stat { return ts.Derived["repo_growth_nochange_bytes"] }, fmtMB)
	row("Growth from the 1%-change backup", func(ts *toolStats) *stat { return ts.Derived["repo_growth_change_bytes"] }, fmtMB)
	w.WriteString("\n")

	header("Peak RSS (MiB)")
	for _, st := range timedSteps {
		k := st.key
		row(st.label, func(ts *toolStats) *stat { return ts.RSS[k] }, fmtMiB)
	}
	row("Max over these steps", func(ts *toolStats) *stat { return &stat{Median: ts.PeakRSSKB, N: 1} }, fmtMiB)
	w.WriteString("\n")

	header("CPU seconds (user+sys)")
	for _, st := range timedSteps {
		k := st.key
		row(st.label, func(ts *toolStats) *stat { return ts.CPU[k] }, fmtSec)
	}
	w.WriteString("\n")

	if len(rep.Targets) > 0 {
		w.WriteString("## Targets\n\n| Target | Against | Measured | Needed | Status |\n|---|---|---:|---:|---|\n")
		for _, t := range rep.Targets {
			status := "n/a"
			if t.Known {
				status = "FAIL"
				if t.Pass {
					status = "pass"
				}
			}
			fmt.Fprintf(&w, "| %s | %s | %s (%s) | %s | %s |\n", t.Name, t.Peer, fmtRatio(t.Value), t.Metric, t.Threshold, status)
		}
		w.WriteString("\n")
	}

	// Per-round raw wall times, to judge the noise.
	w.WriteString("## Per-round wall seconds\n\n| Tool | Step |")
	for r := 1; r <= nRounds; r++ {
		fmt.Fprintf(&w, " round %d |", r)
	}
	w.WriteString("\n|---|---|")
	for r := 1; r <= nRounds; r++ {
		w.WriteString("---:|")
	}
	w.WriteString("\n")
	for _, t := range rep.Tools {
		for _, st := range append(append([]struct{ key, label string }{{"init", "init"}}, timedSteps...), struct{ key, label string }{"cp_a", "cp -a"}) {
			vals := make([]string, nRounds)
			found := false
			for _, s := range samples {
				if s.tool == t && s.step == st.key && s.round >= 1 && s.round <= nRounds {
					found = true
					if s.ok && s.hasTiming {
						vals[s.round-1] = fmtSec(s.wall)
					} else {
						vals[s.round-1] = fmt.Sprintf("exit %d", s.exitCode)
					}
				}
			}
			if !found {
				continue
			}
			fmt.Fprintf(&w, "| %s | %s |", label(t), st.label)
			for _, v := range vals {
				fmt.Fprintf(&w, " %s |", v)
			}
			w.WriteString("\n")
		}
	}
	w.WriteString("\n")
	if len(floor) > 0 {
		w.WriteString(strings.TrimSpace(string(floor)))
		w.WriteString("\n")
	}
	return w.String()
}
