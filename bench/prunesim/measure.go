package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/local"
)

// heapSampler records the peak of the Go heap's live and not yet swept
// objects, sampled every 50 ms.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
	// profile, when set, is a file the sampler writes a heap profile to
	// each time the heap passes its last profiled peak by 5%: the last
	// one written is taken near the peak.
	profile    atomic.Pointer[string]
	profiledAt uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s := []metrics.Sample{{Name: heapMetric}}
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			h.sample(s)
			h.profileAtPeak()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) sample(s []metrics.Sample) {
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	v := s[0].Value.Uint64()
	for {
		old := h.peak.Load()
		if v <= old || h.peak.CompareAndSwap(old, v) {
			return
		}
	}
}

// profileAtPeak writes the heap profile when the peak has grown by 5%
// since the last one.
func (h *heapSampler) profileAtPeak() {
	p := h.profile.Load()
	if p == nil || h.peak.Load() < h.profiledAt+h.profiledAt/20 {
		return
	}
	h.profiledAt = h.peak.Load()
	if f, err := os.Create(*p); err == nil {
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
}

// reset starts a new peak from the current heap.
func (h *heapSampler) reset() {
	h.peak.Store(0)
	h.sample([]metrics.Sample{{Name: heapMetric}})
}

func (h *heapSampler) close() {
	close(h.stop)
	h.wg.Wait()
}

// open opens the generated repository in dir on the simulating backend.
func open(ctx context.Context, dir string, lay *layout) (*repository.Repository, error) {
	lb, err := local.New(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(dir, sidecarName))
	if err != nil {
		return nil, err
	}
	sb := &simBackend{Backend: lb, lay: lay, modTime: fi.ModTime()}
	r, err := repository.Open(ctx, sb, password, "")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	sb.key = r.Key() // the data packs' trailers are sealed with it
	return r, nil
}

// mib formats bytes as MiB for the summary.
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// measure opens the repository in dir, times the index load and prune
// planning, then (if check) the checker, and prints a key=value line for
// each and a summary.
func measure(ctx context.Context, dir string, maxUnused float64, check, sweep, budget bool, memProfile, cpuProfile, sweepProfile string, sweepLimit int64) error {
	b, err := os.ReadFile(filepath.Join(dir, sidecarName))
	if err != nil {
		return fmt.Errorf("read the layout (was -gen run to the end?): %w", err)
	}
	var lay layout
	if err := json.Unmarshal(b, &lay); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, sidecarName), err)
	}
	if err := lay.validate(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, sidecarName), err)
	}
	// What the plan should find, computed before the measurement starts
	// and dropped (a few bytes per pack).
	want := lay.expect()
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile %s: %w", cpuProfile, err)
		}
		defer pprof.StopCPUProfile()
	}
	heap := startHeapSampler()
	defer heap.close()

	wall, cpu := time.Now(), cpuTime()
	r, err := open(ctx, dir, &lay)
	if err != nil {
		return err
	}
	if budget && os.Getenv("GOMEMLIMIT") == "" {
		// The soft limit bunker prune keeps while it loads and plans.
		size, err := indexBytes(ctx, r)
		if err != nil {
			return err
		}
		limit := app.MaintenanceMemoryLimit(size)
		debug.SetMemoryLimit(limit)
		fmt.Printf("memory_limit=%d\n", limit)
	}
	// LoadIndex first, so its share is known: PlanPrune's own LoadIndex
	// then loads nothing more.
	if err := r.LoadIndex(ctx, false); err != nil {
		return err
	}
	loadWall, loadCPU := time.Since(wall), cpuTime()-cpu
	loadHeap := heap.peak.Load()
	p, err := maintenance.PlanPrune(ctx, r, maintenance.Options{DryRun: true, MaxUnused: maxUnused})
	if err != nil {
		return fmt.Errorf("plan prune: %w", err)
	}
	planWall, planCPU := time.Since(wall), cpuTime()-cpu
	planHeap := heap.peak.Load()
	planRSS, rssOK := peakRSS()
	if memProfile != "" {
		if err := writeHeapProfile(memProfile); err != nil {
			return err
		}
	}
	st := p.Stats
	verdict := "ok"
	if len(p.Delete) != want.deletable {
		verdict = fmt.Sprintf("MISMATCH (layout says %d packs hold no reachable blob)", want.deletable)
	}
	fmt.Printf("plan blobs=%d snapshots=%d packs_total=%d packs_delete=%d packs_repack=%d packs_planned=%d bytes_planned=%d unused_bytes_after=%d expected_delete=%d expected_partly=%d unreachable_blobs=%d load_wall_s=%.2f load_cpu_s=%.2f load_heap_peak=%d wall_s=%.2f cpu_s=%.2f heap_peak=%d peak_rss=%d\n",
		lay.Blobs, st.Snapshots, st.PacksTotal, len(p.Delete), len(p.Repack), st.PacksPlanned, st.BytesPlanned, st.UnusedBytes,
		want.deletable, want.partly, want.unreachable,
		loadWall.Seconds(), loadCPU.Seconds(), loadHeap, planWall.Seconds(), planCPU.Seconds(), planHeap, planRSS)
	rss := "unknown"
	if rssOK {
		rss = mib(planRSS)
	}
	fmt.Printf("# %d blobs, %d snapshots: prune planning %.1f s wall, %.1f s CPU (index load %.1f s of it), peak RSS %s, Go heap peak %s; %d of %d packs planned (%d deleted whole: %s; %d repacked)\n",
		lay.Blobs, st.Snapshots, planWall.Seconds(), planCPU.Seconds(), loadWall.Seconds(), rss, mib(int64(planHeap)),
		st.PacksPlanned, st.PacksTotal, len(p.Delete), verdict, len(p.Repack))
	p, r = nil, nil // planning's memory may go now
	if check {
		if err := measureCheck(ctx, dir, &lay, heap, rssOK); err != nil {
			return err
		}
	}
	if sweep {
		return measureSweep(ctx, dir, &lay, heap, budget, rssOK, sweepProfile, sweepLimit)
	}
	return nil
}

// measureCheck runs the checker without reading data, with a peak of its
// own and without the prune's limit.
func measureCheck(ctx context.Context, dir string, lay *layout, heap *heapSampler, rssOK bool) error {
	// The check, with a peak of its own and without the prune's limit:
	// the planning's memory is given back first.
	resetOK := freshPeak(heap)
	wall, cpu := time.Now(), cpuTime()
	r, err := open(ctx, dir, lay)
	if err != nil {
		return err
	}
	res, err := checker.New(r, checker.Options{}).Run(ctx)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	checkWall, checkCPU := time.Since(wall), cpuTime()-cpu
	checkHeap := heap.peak.Load()
	checkRSS, _ := peakRSS()
	if !resetOK {
		checkRSS = 0 // VmHWM could not be reset: it would be planning's
	}
	fmt.Printf("check blobs=%d snapshots=%d packs=%d problems=%d harmful=%d wall_s=%.2f cpu_s=%.2f heap_peak=%d peak_rss=%d\n",
		lay.Blobs, res.Snapshots, res.Packs, len(res.Problems), res.Harmful(), checkWall.Seconds(), checkCPU.Seconds(), checkHeap, checkRSS)
	rss := "unknown"
	if rssOK && resetOK {
		rss = mib(checkRSS)
	}
	fmt.Printf("# check without reading data: %.1f s wall, %.1f s CPU, peak RSS %s, Go heap peak %s; %d problems (%d harmful)\n",
		checkWall.Seconds(), checkCPU.Seconds(), rss, mib(int64(checkHeap)), len(res.Problems), res.Harmful())
	for i, pr := range res.Problems {
		if i == 5 {
			fmt.Printf("#   ... %d more\n", len(res.Problems)-i)
			break
		}
		fmt.Printf("#   %s\n", pr)
	}
	return nil
}

// measureSweep runs a whole prune as bunker prune does (the soft limit
// while it loads and plans, lifted for the rest), with a peak of its own:
// the packs no snapshot uses are planned, found due at once (no backup
// runs, no safety window) and deleted by the sweep, which re-marks, judges
// each planned pack by its trailer and compacts the index. Nothing is
// repacked (a repack would read blobs, which the synthetic packs do not
// have). The repository is changed: run it last.
func measureSweep(ctx context.Context, dir string, lay *layout, heap *heapSampler, budget, rssOK bool, memProfile string, sweepLimit int64) error {
	if memProfile != "" {
		heap.profile.Store(&memProfile)
	}
	resetOK := freshPeak(heap)
	wall, cpu := time.Now(), cpuTime()
	r, err := open(ctx, dir, lay)
	if err != nil {
		return err
	}
	if budget && os.Getenv("GOMEMLIMIT") == "" && sweepLimit == 0 {
		size, err := indexBytes(ctx, r)
		if err != nil {
			return err
		}
		debug.SetMemoryLimit(app.MaintenanceMemoryLimit(size))
		sweepLimit = app.SweepMemoryLimit(size)
	}
	p, err := maintenance.PlanPrune(ctx, r, maintenance.Options{MaxUnused: -1})
	if err != nil {
		return fmt.Errorf("plan prune: %w", err)
	}
	planWall := time.Since(wall)
	planHeap := heap.peak.Load()
	debug.SetMemoryLimit(math.MaxInt64)
	if sweepLimit > 0 {
		fmt.Printf("sweep_memory_limit=%d\n", sweepLimit)
		debug.SetMemoryLimit(sweepLimit)
	}
	res, err := p.Execute(ctx)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	pruneWall, pruneCPU := time.Since(wall), cpuTime()-cpu
	pruneHeap := heap.peak.Load()
	pruneRSS, _ := peakRSS()
	if !resetOK {
		pruneRSS = 0
	}
	fmt.Printf("prune blobs=%d packs_total=%d packs_planned=%d packs_deleted=%d plans_swept=%d plans_waiting=%d index_compacted=%t plan_wall_s=%.2f plan_heap_peak=%d wall_s=%.2f cpu_s=%.2f heap_peak=%d peak_rss=%d\n",
		lay.Blobs, res.PacksTotal, res.PacksPlanned, res.PacksDeleted, res.PlansSwept, res.PlansWaiting, res.IndexCompacted,
		planWall.Seconds(), planHeap, pruneWall.Seconds(), pruneCPU.Seconds(), pruneHeap, pruneRSS)
	rss := "unknown"
	if rssOK && resetOK {
		rss = mib(pruneRSS)
	}
	fmt.Printf("# prune with its sweep: %.1f s wall (planning %.1f s), %.1f s CPU, peak RSS %s, Go heap peak %s (planning %s); %d of %d packs deleted\n",
		pruneWall.Seconds(), planWall.Seconds(), pruneCPU.Seconds(), rss, mib(int64(pruneHeap)), mib(int64(planHeap)), res.PacksDeleted, res.PacksTotal)
	if res.PacksDeleted != lay.expect().deletable {
		return fmt.Errorf("the prune deleted %d packs, the layout has %d that hold no reachable blob", res.PacksDeleted, lay.expect().deletable)
	}
	// What the sweep left must check clean (not measured): the deleted
	// packs are gone from the index, and every snapshot's blobs are found.
	r, err = open(ctx, dir, lay)
	if err != nil {
		return err
	}
	after, err := checker.New(r, checker.Options{}).Run(ctx)
	if err != nil {
		return fmt.Errorf("check after the prune: %w", err)
	}
	fmt.Printf("# check after the prune: %d problems\n", len(after.Problems))
	for i, pr := range after.Problems {
		if i == 5 {
			fmt.Printf("#   ... %d more\n", len(after.Problems)-i)
			break
		}
		fmt.Printf("#   %s\n", pr)
	}
	if len(after.Problems) > 0 {
		return fmt.Errorf("the repository the prune left has %d problems", len(after.Problems))
	}
	return nil
}

// indexBytes is the size of r's index files, what bunker prune sizes its
// memory limits from.
func indexBytes(ctx context.Context, r *repository.Repository) (int64, error) {
	infos, err := r.List(ctx, storage.IndexFile)
	if err != nil {
		return 0, err
	}
	var size int64
	for _, fi := range infos {
		size += fi.Size
	}
	return size, nil
}

// freshPeak lifts the memory limit, gives what earlier measurements left
// back to the system and starts new peaks (VmHWM and the heap's), so
// that the next measurement's peak is its own. It reports whether VmHWM
// could be reset.
func freshPeak(heap *heapSampler) bool {
	debug.SetMemoryLimit(math.MaxInt64)
	runtime.GC()
	debug.FreeOSMemory()
	ok := resetPeakRSS()
	heap.reset()
	return ok
}

// writeHeapProfile writes the heap profile after a GC: in-use figures are
// what is live at that point, alloc figures everything allocated so far.
func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("memory profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("memory profile %s: %w", path, err)
	}
	return nil
}
