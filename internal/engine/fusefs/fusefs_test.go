//go:build !windows

package fusefs

import (
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
)

func TestSnapshotNamesAreUnique(t *testing.T) {
	plus1 := time.FixedZone("", 3600)
	at := func(s string, ns int) *snapshot.Snapshot {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &snapshot.Snapshot{Time: tm.Add(time.Duration(ns)).In(plus1)}
	}
	snaps := []*snapshot.Snapshot{
		at("2026-12-07T08:41:00Z", 0),
		at("2026-12-07T08:41:00Z", 5),
		at("2026-12-07T08:41:00Z", 9),
		at("2026-12-07T08:42:00Z", 0),
	}
	got := SnapshotNames(snaps)
	want := []string{"2026-12-07T09:41:00+01:00", "2026-12-07T09:41:00+01:00-1", "2026-12-07T09:41:00+01:00-2", "2026-12-07T09:42:00+01:00"}
	if !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

func TestLRUStaysWithinItsBound(t *testing.T) {
	c := newLRU[int, []byte](100)
	for i := 0; i < 10; i++ {
		c.add(i, make([]byte, 30), 30)
	}
	if c.size > 100 {
		t.Errorf("size %d over the bound", c.size)
	}
	for i := 0; i < 7; i++ {
		if _, ok := c.get(i); ok {
			t.Errorf("entry %d kept, want it dropped", i)
		}
	}
	for i := 7; i < 10; i++ {
		if _, ok := c.get(i); !ok {
			t.Errorf("entry %d dropped, want it kept", i)
		}
	}
	c.add(99, make([]byte, 200), 200) // larger than the bound: not kept
	if _, ok := c.get(99); ok || c.size > 100 {
		t.Errorf("oversized entry kept (size %d)", c.size)
	}
}
