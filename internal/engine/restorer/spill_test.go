package restorer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// TestSpillIsPrivate: the spill file is never made inside the restore
// target, has no name in its directory (or had it only for an instant),
// is readable by its owner only, gives back what was put, and forgets a
// blob once dropped.
func TestSpillIsPrivate(t *testing.T) {
	target := t.TempDir()
	inTarget := filepath.Join(target, "cache")
	if err := os.Mkdir(inTarget, 0o700); err != nil {
		t.Fatal(err)
	}
	s := newSpill(inTarget, target, nil)
	for _, d := range s.dirs {
		if inside(d, target) {
			t.Fatalf("spill directory %s is inside the target %s", d, target)
		}
	}

	dir := t.TempDir()
	s = newSpill(dir, target, nil)
	defer s.close()
	a, b := bytes.Repeat([]byte("a"), 5000), []byte("bb")
	if !s.put(ID{1}, a) || !s.put(ID{2}, b) {
		t.Fatalf("put failed: %v", s.broken)
	}
	if names, err := os.ReadDir(dir); err != nil || len(names) != 0 {
		t.Errorf("the spill directory lists %v (%v); want nothing", names, err)
	}
	fi, err := s.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("spill file mode %v: others may read it", perm)
	}
	for id, want := range map[ID][]byte{{1}: a, {2}: b} {
		got, found, err := s.get(id, nil)
		if err != nil || !found || !bytes.Equal(got, want) {
			t.Errorf("get %v: %d bytes, found %v, %v; want %d bytes", id, len(got), found, err, len(want))
		}
	}
	s.drop(ID{1})
	if _, found, _ := s.get(ID{1}, nil); found || s.has(ID{1}) {
		t.Error("a dropped blob is still in the spill file")
	}
	if got, _, _ := s.get(ID{2}, nil); !bytes.Equal(got, b) {
		t.Error("dropping one blob damaged another")
	}
}

// TestSpillFailureWarnsOnce: when no spill file can be made, put reports
// false (the blob is read from the repository again) and the restore is
// told once, with the reason.
func TestSpillFailureWarnsOnce(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("TMPDIR", missing)
	var warnings []string
	s := newSpill(missing, t.TempDir(), func(msg string) { warnings = append(warnings, msg) })
	for i := range 3 {
		if s.put(ID{byte(i)}, []byte("plain")) {
			t.Fatalf("put %d succeeded without a spill file", i)
		}
	}
	if len(warnings) != 1 || !bytes.Contains([]byte(warnings[0]), []byte(missing)) || !bytes.Contains([]byte(warnings[0]), []byte("read from the repository again")) {
		t.Fatalf("warnings = %q, want one naming %s", warnings, missing)
	}
}

// TestSpilledCopyIsChecked: a spilled copy that no longer matches its blob
// ID (the file damaged, or written to by someone else while the restore
// runs) is never handed to a file: load reports it unknown, and the
// restore reads the blob from the repository instead.
func TestSpilledCopyIsChecked(t *testing.T) {
	hash := func(b []byte) ID { return ID(sha256.Sum256(b)) }
	good := bytes.Repeat([]byte("shared content "), 300)
	id := hash(good)
	ra := newReadahead(nil, hash, t.TempDir(), t.TempDir(), 1, nil)
	defer ra.close()
	ra.need(id)
	ra.need(id)
	if !ra.spill.put(id, good) {
		t.Fatalf("put: %v", ra.spill.broken)
	}
	out, ok, err := ra.load(context.Background(), id, nil)
	if err != nil || !ok || !bytes.Equal(out, good) {
		t.Fatalf("intact copy: ok %v, %v", ok, err)
	}
	rec := ra.spill.at[id]
	if _, err := ra.spill.f.WriteAt([]byte("X"), rec.off+10); err != nil {
		t.Fatal(err)
	}
	out, ok, err = ra.load(context.Background(), id, nil)
	if ok || err != nil || out != nil {
		t.Fatalf("damaged copy: %d bytes, ok %v, %v; want it refused", len(out), ok, err)
	}
}
