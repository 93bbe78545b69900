package storagetest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// Options tune the suite for backends that cannot meet every check.
type Options struct {
	// SkipModTime skips the check that ModTime is within a minute of
	// time.Now, for backends with a fake clock.
	SkipModTime bool
}

// Run runs the conformance suite against the backends newBackend returns.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	t.Helper()
	RunWithOptions(t, newBackend, Options{})
}

// RunWithOptions is Run with options.
func RunWithOptions(t *testing.T, newBackend func(t *testing.T) storage.Backend, opts Options) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, be storage.Backend, opts Options)
	}{
		{"RoundTrip", testRoundTrip},
		{"SaveDoesNotRetainData", testSaveDoesNotRetain},
		{"RangedLoad", testRangedLoad},
		{"LoadCallbackError", testLoadCallbackError},
		{"Missing", testMissing},
		{"Overwrite", testOverwrite},
		{"Remove", testRemove},
		{"List", testList},
		{"ListManyPacks", testListManyPacks},
		{"ListCallbackError", testListCallbackError},
		{"IfNotExists", testIfNotExists},
		{"IfNotExistsRace", testIfNotExistsRace},
		{"Concurrent", testConcurrent},
		{"InvalidHandles", testInvalidHandles},
		{"ModTime", testModTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t)
			if be == nil {
				t.Fatal("newBackend returned nil")
			}
			tc.fn(t, be, opts)
		})
	}
}

// --- helpers ---------------------------------------------------------------

// randomBytes returns n pseudo-random bytes determined by seed.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	buf := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(buf)
	return buf
}

// randomName returns a 64-character hex name, like a pack or index ID.
func randomName(r *rand.Rand) string {
	var b [32]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return hex.EncodeToString(b[:])
}

// handles returns one handle of each type, with the given name for the
// named types.
func handles(name string) []storage.Handle {
	hs := make([]storage.Handle, 0, len(storage.AllTypes))
	for _, t := range storage.AllTypes {
		h := storage.Handle{Type: t, Name: name}
		if t == storage.ConfigFile {
			h.Name = ""
		}
		hs = append(hs, h)
	}
	return hs
}

func save(t *testing.T, be storage.Backend, h storage.Handle, data []byte) {
	t.Helper()
	if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
		t.Fatalf("Save(%v, %d bytes): %v", h, len(data), err)
	}
}

// load reads a range with a callback that is idempotent, as the contract
// requires: the backend may call it more than once.
func load(t *testing.T, be storage.Backend, h storage.Handle, length int, offset int64) ([]byte, error) {
	t.Helper()
	var buf []byte
	err := be.Load(t.Context(), h, length, offset, func(rd io.Reader) error {
		b, err := io.ReadAll(rd)
		buf = b
		return err
	})
	return buf, err
}

// mustLoad loads a whole object and compares it with want.
func mustLoad(t *testing.T, be storage.Backend, h storage.Handle, want []byte) {
	t.Helper()
	got, err := load(t, be, h, 0, 0)
	if err != nil {
		t.Fatalf("Load(%v): %v", h, err)
	}
	if d := diff(got, want); d != "" {
		t.Fatalf("Load(%v): %s", h, d)
	}
}

// diff describes how got differs from want, or returns "".
func diff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("content differs first at byte %d of %d", i, len(got))
		}
	}
	return "content differs"
}

// listAll returns the listing of type t, failing on duplicates.
func listAll(t *testing.T, be storage.Backend, ft storage.FileType) map[string]storage.FileInfo {
	t.Helper()
	got := make(map[string]storage.FileInfo)
	err := be.List(t.Context(), ft, func(fi storage.FileInfo) error {
		if _, dup := got[fi.Name]; dup {
			return fmt.Errorf("%q listed twice", fi.Name)
		}
		got[fi.Name] = fi
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s): %v", ft, err)
	}
	return got
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// --- tests -----------------------------------------------------------------

func testRoundTrip(t *testing.T, be storage.Backend, _ Options) {
	type obj struct {
		h    storage.Handle
		size int
	}
	var objs []obj
	for _, ft := range storage.AllTypes {
		if ft == storage.ConfigFile {
			objs = append(objs, obj{storage.Handle{Type: ft}, 321})
			continue
		}
		for _, size := range []int{0, 1, 4097} {
			objs = append(objs, obj{storage.Handle{Type: ft, Name: fmt.Sprintf("obj-%d", size)}, size})
		}
	}
	objs = append(objs, obj{storage.Handle{Type: storage.PackFile, Name: "5mib"}, 5 << 20})
	for i, o := range objs {
		t.Run(fmt.Sprintf("%v/%d", o.h, o.size), func(t *testing.T) {
			data := randomBytes(uint64(i), o.size)
			save(t, be, o.h, data)
			mustLoad(t, be, o.h, data)
			fi, err := be.Stat(t.Context(), o.h)
			if err != nil {
				t.Fatalf("Stat(%v): %v", o.h, err)
			}
			if fi.Size != int64(o.size) || fi.Name != o.h.Name {
				t.Errorf("Stat(%v) = name %q size %d, want name %q size %d", o.h, fi.Name, fi.Size, o.h.Name, o.size)
			}
			all, err := storage.LoadAll(t.Context(), be, o.h)
			if err != nil {
				t.Fatalf("LoadAll(%v): %v", o.h, err)
			}
			if d := diff(all, data); d != "" {
				t.Errorf("LoadAll(%v): %s", o.h, d)
			}
		})
	}
}

func testSaveDoesNotRetain(t *testing.T, be storage.Backend, _ Options) {
	h := storage.Handle{Type: storage.IndexFile, Name: "retain"}
	data := randomBytes(1, 1000)
	want := bytes.Clone(data)
	save(t, be, h, data)
	for i := range data {
		data[i] ^= 0xff
	}
	mustLoad(t, be, h, want)
}

func testRangedLoad(t *testing.T, be storage.Backend, _ Options) {
	const size = 1000
	h := storage.Handle{Type: storage.PackFile, Name: "ranged"}
	data := randomBytes(2, size)
	save(t, be, h, data)
	tests := []struct {
		name    string
		offset  int64
		length  int
		wantErr bool
	}{
		{"whole", 0, 0, false},
		{"whole explicit", 0, size, false},
		{"first byte", 0, 1, false},
		{"last byte", size - 1, 1, false},
		{"middle", 123, 456, false},
		{"to end from middle", 500, 0, false},
		{"to end from last byte", size - 1, 0, false},
		{"length past end", 0, size + 1, true},
		{"range past end", size - 1, 2, true},
		{"middle past end", 500, 501, true},
		{"offset past end", size + 1, 0, true},
		{"offset past end with length", size + 10, 5, true},
		{"negative offset", -1, 10, true},
		{"negative length", 0, -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(t, be, h, tc.length, tc.offset)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Load(offset %d, length %d) of a %d-byte object succeeded, want error", tc.offset, tc.length, size)
				}
				if !storage.IsPermanent(err) {
					t.Errorf("Load(offset %d, length %d) of a %d-byte object = %v, want a permanent error (storage.Permanent): retrying cannot help", tc.offset, tc.length, size, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(offset %d, length %d): %v", tc.offset, tc.length, err)
			}
			end := int64(size)
			if tc.length > 0 {
				end = tc.offset + int64(tc.length)
			}
			if d := diff(got, data[tc.offset:end]); d != "" {
				t.Errorf("Load(offset %d, length %d): %s", tc.offset, tc.length, d)
			}
		})
	}
	t.Run("partial read by callback", func(t *testing.T) {
		err := be.Load(t.Context(), h, 0, 0, func(rd io.Reader) error {
			var b [10]byte
			_, err := io.ReadFull(rd, b[:])
			if err == nil && !bytes.Equal(b[:], data[:10]) {
				err = errors.New("wrong first 10 bytes")
			}
			return err
		})
		if err != nil {
			t.Fatalf("Load with a callback reading only 10 bytes: %v", err)
		}
	})
}

func testLoadCallbackError(t *testing.T, be storage.Backend, _ Options) {
	h := storage.Handle{Type: storage.SnapshotFile, Name: "cb-error"}
	save(t, be, h, []byte("some data"))
	errCallback := errors.New("callback failed")
	err := be.Load(t.Context(), h, 0, 0, func(io.Reader) error { return errCallback })
	if !errors.Is(err, errCallback) {
		t.Fatalf("Load with a failing callback = %v, want an error wrapping the callback's", err)
	}
}

func testMissing(t *testing.T, be storage.Backend, _ Options) {
	// Something exists, so that missing objects are not only found
	// missing because the store is empty.
	save(t, be, storage.Handle{Type: storage.PackFile, Name: "mi-present"}, []byte("x"))
	for _, h := range append(handles("missing"), storage.Handle{Type: storage.PackFile, Name: "mi-absent"}) {
		t.Run(h.String(), func(t *testing.T) {
			if _, err := be.Stat(t.Context(), h); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("Stat(%v) of a missing object = %v, want ErrNotExist", h, err)
			}
			for _, r := range []struct {
				length int
				offset int64
			}{{0, 0}, {5, 10}} {
				called := false
				err := be.Load(t.Context(), h, r.length, r.offset, func(io.Reader) error {
					called = true
					return nil
				})
				if !errors.Is(err, storage.ErrNotExist) {
					t.Errorf("Load(%v, length %d, offset %d) of a missing object = %v, want ErrNotExist", h, r.length, r.offset, err)
				}
				if called {
					t.Errorf("Load(%v) of a missing object called the callback", h)
				}
			}
		})
	}
}

func testOverwrite(t *testing.T, be storage.Backend, _ Options) {
	for i, h := range handles("overwrite") {
		t.Run(h.String(), func(t *testing.T) {
			v1, v2 := randomBytes(uint64(10+i), 100), randomBytes(uint64(20+i), 150)
			save(t, be, h, v1)
			err := be.Save(t.Context(), h, v2, storage.SaveOptions{})
			if be.Features().AppendOnly {
				if !errors.Is(err, storage.ErrPermission) {
					t.Fatalf("append-only: overwriting %v = %v, want ErrPermission", h, err)
				}
				mustLoad(t, be, h, v1)
				return
			}
			if err != nil {
				t.Fatalf("overwriting %v: %v", h, err)
			}
			mustLoad(t, be, h, v2)
			if fi, err := be.Stat(t.Context(), h); err != nil || fi.Size != int64(len(v2)) {
				t.Errorf("Stat(%v) after overwrite = size %d, %v; want size %d", h, fi.Size, err, len(v2))
			}
		})
	}
}

func testRemove(t *testing.T, be storage.Backend, _ Options) {
	for i, h := range handles("remove") {
		t.Run(h.String(), func(t *testing.T) {
			data := randomBytes(uint64(30+i), 64)
			save(t, be, h, data)
			if be.Features().AppendOnly {
				if err := be.Remove(t.Context(), h); !errors.Is(err, storage.ErrPermission) {
					t.Fatalf("append-only: Remove(%v) = %v, want ErrPermission", h, err)
				}
				mustLoad(t, be, h, data)
				return
			}
			if err := be.Remove(t.Context(), h); err != nil {
				t.Fatalf("Remove(%v): %v", h, err)
			}
			if _, err := be.Stat(t.Context(), h); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("Stat(%v) after Remove = %v, want ErrNotExist", h, err)
			}
			if _, err := load(t, be, h, 0, 0); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("Load(%v) after Remove = %v, want ErrNotExist", h, err)
			}
			if _, ok := listAll(t, be, h.Type)[h.Name]; ok {
				t.Errorf("List(%s) after Remove still has %q", h.Type, h.Name)
			}
			if err := be.Remove(t.Context(), h); err != nil {
				t.Errorf("second Remove(%v) = %v, want nil (idempotent)", h, err)
			}
		})
	}
	t.Run("never existed", func(t *testing.T) {
		if be.Features().AppendOnly {
			t.Skip("append-only backend")
		}
		for _, h := range append(handles("never-existed"), storage.Handle{Type: storage.PackFile, Name: "zz-no-shard"}) {
			if err := be.Remove(t.Context(), h); err != nil {
				t.Errorf("Remove(%v) of an object that never existed = %v, want nil", h, err)
			}
		}
	})
}

func testList(t *testing.T, be storage.Backend, _ Options) {
	for _, ft := range storage.AllTypes {
		if got := listAll(t, be, ft); len(got) != 0 {
			t.Fatalf("List(%s) of an empty backend = %v, want nothing", ft, sortedNames(got))
		}
	}
	want := make(map[storage.FileType]map[string]int64)
	for i, ft := range storage.AllTypes {
		want[ft] = make(map[string]int64)
		names := []string{"a", "b-1", "c_2.x", fmt.Sprintf("%s-%d", ft, i)}
		if ft == storage.ConfigFile {
			names = []string{""}
		}
		if ft == storage.PackFile {
			names = append(names, "ab", "abc", "ab0123", "zz9")
		}
		for j, name := range names {
			size := 10*i + j
			save(t, be, storage.Handle{Type: ft, Name: name}, randomBytes(uint64(100*i+j), size))
			want[ft][name] = int64(size)
		}
	}
	for _, ft := range storage.AllTypes {
		got := listAll(t, be, ft)
		if g, w := sortedNames(got), sortedNames(want[ft]); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("List(%s) = %q, want %q", ft, g, w)
			continue
		}
		for name, fi := range got {
			if fi.Size != want[ft][name] {
				t.Errorf("List(%s): %q has size %d, want %d", ft, name, fi.Size, want[ft][name])
			}
			if fi.ModTime.IsZero() {
				t.Errorf("List(%s): %q has a zero ModTime", ft, name)
			}
		}
	}
	if err := be.List(t.Context(), storage.FileType("bogus"), func(storage.FileInfo) error { return nil }); err == nil {
		t.Errorf("List of an unknown type succeeded, want error")
	}
}

func testListManyPacks(t *testing.T, be storage.Backend, _ Options) {
	const n, workers = 300, 8
	r := rand.New(rand.NewPCG(1, 2))
	want := make(map[string]int64, n)
	names := make([]string, n)
	for i := range names {
		names[i] = randomName(r)
		want[names[i]] = int64(i % 17)
	}
	work := make(chan string)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range workers {
		wg.Go(func() {
			for name := range work {
				h := storage.Handle{Type: storage.PackFile, Name: name}
				err := be.Save(t.Context(), h, make([]byte, want[name]), storage.SaveOptions{})
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	got := listAll(t, be, storage.PackFile)
	if len(got) != n {
		t.Fatalf("List(packs) returned %d packs, want %d", len(got), n)
	}
	for name, size := range want {
		fi, ok := got[name]
		if !ok {
			t.Fatalf("List(packs) lacks %s", name)
		}
		if fi.Size != size {
			t.Errorf("List(packs): %s has size %d, want %d", name, fi.Size, size)
		}
	}
	// Other types do not see the packs.
	if got := listAll(t, be, storage.IndexFile); len(got) != 0 {
		t.Errorf("List(index) = %d objects, want none", len(got))
	}
}

func testListCallbackError(t *testing.T, be storage.Backend, _ Options) {
	for i := range 5 {
		save(t, be, storage.Handle{Type: storage.PackFile, Name: fmt.Sprintf("%02x-cb", i*50)}, []byte{byte(i)})
		save(t, be, storage.Handle{Type: storage.KeyFile, Name: fmt.Sprintf("key-%d", i)}, []byte{byte(i)})
	}
	errStop := errors.New("stop listing")
	for _, ft := range []storage.FileType{storage.PackFile, storage.KeyFile} {
		calls := 0
		err := be.List(t.Context(), ft, func(storage.FileInfo) error {
			calls++
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Errorf("List(%s) with a failing callback = %v, want the callback's error", ft, err)
		}
		if calls != 1 {
			t.Errorf("List(%s) called the failing callback %d times, want 1", ft, calls)
		}
	}
}

func testIfNotExists(t *testing.T, be storage.Backend, _ Options) {
	if !be.Features().ConditionalCreate {
		t.Skip("backend has no conditional create")
	}
	create := storage.SaveOptions{IfNotExists: true}
	for i, h := range handles("cond") {
		t.Run(h.String(), func(t *testing.T) {
			v1, v2 := randomBytes(uint64(40+i), 50), randomBytes(uint64(50+i), 60)
			if err := be.Save(t.Context(), h, v1, create); err != nil {
				t.Fatalf("conditional create of new %v: %v", h, err)
			}
			if err := be.Save(t.Context(), h, v2, create); !errors.Is(err, storage.ErrExists) {
				t.Fatalf("conditional create of existing %v = %v, want ErrExists", h, err)
			}
			mustLoad(t, be, h, v1)
			if got := listAll(t, be, h.Type); len(got) != 1 {
				t.Errorf("List(%s) after conditional creates = %q, want just %q", h.Type, sortedNames(got), h.Name)
			}
			if be.Features().AppendOnly {
				return
			}
			if err := be.Remove(t.Context(), h); err != nil {
				t.Fatalf("Remove(%v): %v", h, err)
			}
			if err := be.Save(t.Context(), h, v2, create); err != nil {
				t.Fatalf("conditional create of removed %v: %v", h, err)
			}
			mustLoad(t, be, h, v2)
		})
	}
}

func testIfNotExistsRace(t *testing.T, be storage.Backend, _ Options) {
	if !be.Features().ConditionalCreate {
		t.Skip("backend has no conditional create")
	}
	const racers, rounds = 8, 5
	for round := range rounds {
		h := storage.Handle{Type: storage.MaintFile, Name: fmt.Sprintf("lease-%d", round)}
		if round == 0 {
			h = storage.Handle{Type: storage.PackFile, Name: "race-pack"}
		}
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				data := randomBytes(uint64(1000*round+i), 100+i)
				errs[i] = be.Save(t.Context(), h, data, storage.SaveOptions{IfNotExists: true})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: racers %d and %d both created %v", round, winner, i, h)
			case err == nil:
				winner = i
			case !errors.Is(err, storage.ErrExists):
				t.Fatalf("round %d: racer %d: %v, want nil or ErrExists", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no racer created %v", round, h)
		}
		mustLoad(t, be, h, randomBytes(uint64(1000*round+winner), 100+winner))
	}
}

func testConcurrent(t *testing.T, be storage.Backend, _ Options) {
	const workers, perWorker = 8, 10
	appendOnly := be.Features().AppendOnly
	shared := storage.Handle{Type: storage.IndexFile, Name: "shared"}
	sharedData := randomBytes(7, 2000)
	if appendOnly {
		save(t, be, shared, sharedData)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*3)
	for w := range workers {
		wg.Go(func() {
			errs <- func() error {
				for i := range perWorker {
					h := storage.Handle{Type: storage.PackFile, Name: fmt.Sprintf("%02x-w%d-%d", (w*perWorker+i)%256, w, i)}
					data := randomBytes(uint64(w*perWorker+i), 1000+i)
					if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
						return err
					}
					if !appendOnly {
						// Saving one name concurrently with the same
						// content, as the engine may do.
						if err := be.Save(t.Context(), shared, sharedData, storage.SaveOptions{}); err != nil {
							return err
						}
					}
					var got []byte
					err := be.Load(t.Context(), h, 0, 0, func(rd io.Reader) error {
						b, err := io.ReadAll(rd)
						got = b
						return err
					})
					if err != nil {
						return err
					}
					if d := diff(got, data); d != "" {
						return fmt.Errorf("load %v: %s", h, d)
					}
					var sh []byte
					err = be.Load(t.Context(), shared, 0, 0, func(rd io.Reader) error {
						b, err := io.ReadAll(rd)
						sh = b
						return err
					})
					if err != nil && !errors.Is(err, storage.ErrNotExist) {
						return err
					}
					if err == nil {
						if d := diff(sh, sharedData); d != "" {
							return fmt.Errorf("load %v while being saved: %s (torn write?)", shared, d)
						}
					}
					if i%3 == 0 {
						err := be.List(t.Context(), storage.PackFile, func(storage.FileInfo) error { return nil })
						if err != nil {
							return err
						}
					}
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := listAll(t, be, storage.PackFile); len(got) != workers*perWorker {
		t.Errorf("List(packs) after concurrent saves = %d packs, want %d", len(got), workers*perWorker)
	}
	mustLoad(t, be, shared, sharedData)
}

func testInvalidHandles(t *testing.T, be storage.Backend, _ Options) {
	invalid := []storage.Handle{
		{Type: storage.PackFile},
		{Type: storage.KeyFile},
		{Type: storage.ConfigFile, Name: "x"},
		{Type: "bogus", Name: "abc"},
		{Type: "", Name: "abc"},
		{Type: storage.PackFile, Name: "../escape"},
		{Type: storage.KeyFile, Name: "a/b"},
		{Type: storage.KeyFile, Name: `a\b`},
		{Type: storage.SnapshotFile, Name: ".."},
		{Type: storage.IndexFile, Name: ".tmp-x"},
		{Type: storage.PackFile, Name: "ABC"},
		{Type: storage.PackFile, Name: "a b"},
		{Type: storage.SessionFile, Name: "a\x00b"},
		{Type: storage.MaintFile, Name: "é"},
	}
	for _, h := range invalid {
		t.Run(fmt.Sprintf("%q", h.String()), func(t *testing.T) {
			if err := be.Save(t.Context(), h, []byte("x"), storage.SaveOptions{}); err == nil {
				t.Errorf("Save(%q) succeeded, want error", h.String())
			} else if !storage.IsPermanent(err) {
				t.Errorf("Save(%q) = %v, want a permanent error (h.Valid() gives one): retrying cannot help", h.String(), err)
			}
			if err := be.Save(t.Context(), h, []byte("x"), storage.SaveOptions{IfNotExists: true}); err == nil {
				t.Errorf("conditional Save(%q) succeeded, want error", h.String())
			}
			called := false
			if err := be.Load(t.Context(), h, 0, 0, func(io.Reader) error { called = true; return nil }); err == nil {
				t.Errorf("Load(%q) succeeded, want error", h.String())
			}
			if called {
				t.Errorf("Load(%q) called the callback", h.String())
			}
			if _, err := be.Stat(t.Context(), h); err == nil {
				t.Errorf("Stat(%q) succeeded, want error", h.String())
			}
			if err := be.Remove(t.Context(), h); err == nil {
				t.Errorf("Remove(%q) succeeded, want error", h.String())
			}
		})
	}
	for _, ft := range storage.AllTypes {
		if got := listAll(t, be, ft); len(got) != 0 {
			t.Errorf("List(%s) after saves of invalid handles = %q, want nothing", ft, sortedNames(got))
		}
	}
}

func testModTime(t *testing.T, be storage.Backend, opts Options) {
	if opts.SkipModTime {
		t.Skip("Options.SkipModTime")
	}
	const slack = time.Minute
	for i, h := range []storage.Handle{{Type: storage.ConfigFile}, {Type: storage.PackFile, Name: "mtime"}, {Type: storage.SessionFile, Name: "mtime"}} {
		before := time.Now()
		save(t, be, h, randomBytes(uint64(60+i), 10))
		after := time.Now()
		fi, err := be.Stat(t.Context(), h)
		if err != nil {
			t.Fatalf("Stat(%v): %v", h, err)
		}
		if fi.ModTime.Before(before.Add(-slack)) || fi.ModTime.After(after.Add(slack)) {
			t.Errorf("Stat(%v).ModTime = %v, want within %v of the save at %v", h, fi.ModTime, slack, before)
		}
		lfi, ok := listAll(t, be, h.Type)[h.Name]
		if !ok {
			t.Fatalf("List(%s) lacks %q", h.Type, h.Name)
		}
		if d := lfi.ModTime.Sub(fi.ModTime).Abs(); d > slack {
			t.Errorf("List(%s): %q has ModTime %v, Stat says %v", h.Type, h.Name, lfi.ModTime, fi.ModTime)
		}
	}
}
