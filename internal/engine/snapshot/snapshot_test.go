package snapshot

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// snap makes a snapshot with a recognisable ID.
func snap(n int, t time.Time, host string, paths, tags []string) *Snapshot {
	var id ID
	id[0], id[1], id[2] = byte(n>>8), byte(n), 0xab
	return &Snapshot{ID: id, Time: t, Hostname: host, Paths: paths, Tags: tags}
}

func idOf(prefix string) ID {
	var id ID
	for i := 0; i < len(prefix)/2; i++ {
		fmt.Sscanf(prefix[2*i:2*i+2], "%02x", &id[i])
	}
	return id
}

func TestFind(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := &Snapshot{ID: idOf("abcd1111"), Time: base, Hostname: "h1", Tags: []string{"x"}}
	b := &Snapshot{ID: idOf("abcd2222"), Time: base.Add(time.Hour), Hostname: "h2"}
	c := &Snapshot{ID: idOf("ef001234"), Time: base.Add(2 * time.Hour), Hostname: "h1"}
	all := []*Snapshot{a, b, c} // sorted oldest first, as LoadAll returns them
	for _, tc := range []struct {
		ref  string
		f    Filter
		want *Snapshot
		err  string
	}{
		{"latest", Filter{}, c, ""},
		{"latest", Filter{Hosts: []string{"h2"}}, b, ""},
		{"latest", Filter{Tags: []string{"x"}}, a, ""},
		{"latest", Filter{Hosts: []string{"nope"}}, nil, "no matching snapshot"},
		{"abcd1", Filter{}, a, ""},
		{"ABCD2", Filter{}, b, ""}, // prefixes are case-insensitive
		{c.ID.String(), Filter{}, c, ""},
		{"abcd", Filter{}, nil, "ambiguous"},
		{"abc", Filter{}, nil, "too short"},
		{"", Filter{}, nil, "too short"},
		{"ffff", Filter{}, nil, "no matching snapshot"},
		// A prefix names one snapshot whatever the filter says.
		{"ef00", Filter{Hosts: []string{"h2"}}, c, ""},
	} {
		got, err := Find(all, tc.ref, tc.f)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Find(%q): %v, want error %q", tc.ref, err, tc.err)
			}
			if tc.err == "no matching snapshot" && !errors.Is(err, ErrNotFound) {
				t.Errorf("Find(%q): %v does not wrap ErrNotFound", tc.ref, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Find(%q) = %v, %v; want %s", tc.ref, got, err, tc.want.ShortID())
		}
	}
	if _, err := Find(nil, "latest", Filter{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("latest of nothing: %v", err)
	}
}

func TestFilter(t *testing.T) {
	sn := &Snapshot{Hostname: "h", Paths: []string{"/home", "/etc"}, Tags: []string{"a", "b"}}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Hosts: []string{"x", "h"}}, true},
		{Filter{Hosts: []string{"x"}}, false},
		{Filter{Tags: []string{"a,b"}}, true},     // all of a and b
		{Filter{Tags: []string{"a,c"}}, false},    // c missing
		{Filter{Tags: []string{"c", "b"}}, true},  // alternatives
		{Filter{Tags: []string{"a,,b,"}}, true},   // empty parts ignored
		{Filter{Paths: []string{"/home/"}}, true}, // cleaned
		{Filter{Paths: []string{"/home", "/etc"}}, true},
		{Filter{Paths: []string{"/home", "/var"}}, false},
	} {
		if got := tc.f.Match(sn); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
		}
	}
	list := []*Snapshot{sn, {Hostname: "other"}}
	if got := (Filter{Hosts: []string{"other"}}).Apply(list); len(got) != 1 || got[0] != list[1] {
		t.Error("Apply")
	}
}

func TestSortByTime(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := &Snapshot{ID: idOf("02"), Time: base}
	b := &Snapshot{ID: idOf("01"), Time: base.In(time.FixedZone("", 3600))} // same instant
	c := &Snapshot{ID: idOf("00"), Time: base.Add(-time.Second)}
	s := []*Snapshot{a, b, c}
	SortByTime(s)
	if s[0] != c || s[1] != b || s[2] != a {
		t.Fatal("oldest first, equal times by ID")
	}
}

func TestGroup(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s1 := snap(1, base, "h1", []string{"/b", "/a"}, []string{"y", "x"})
	s2 := snap(2, base, "h2", []string{"/a", "/b"}, []string{"x", "y"})
	s3 := snap(3, base, "h1", []string{"/a"}, nil)
	s4 := snap(4, base, "h1", []string{"/a", "/b"}, []string{"x"})
	all := []*Snapshot{s1, s2, s3, s4}
	for _, tc := range []struct {
		by   string
		want [][]*Snapshot
	}{
		{"", [][]*Snapshot{{s1, s2, s3, s4}}},
		{"host", [][]*Snapshot{{s1, s3, s4}, {s2}}},
		{"hostname", [][]*Snapshot{{s1, s3, s4}, {s2}}},
		{"paths", [][]*Snapshot{{s1, s2, s4}, {s3}}}, // path order does not matter
		{"tags", [][]*Snapshot{{s1, s2}, {s3}, {s4}}},
		{"host,paths", [][]*Snapshot{{s1, s4}, {s2}, {s3}}},
		{"host, paths,tags", [][]*Snapshot{{s1}, {s2}, {s3}, {s4}}},
	} {
		keys, groups, err := Group(all, tc.by)
		if err != nil {
			t.Fatalf("%q: %v", tc.by, err)
		}
		var got [][]*Snapshot
		for _, k := range keys {
			got = append(got, groups[k.String()])
		}
		if !slices.EqualFunc(got, tc.want, func(a, b []*Snapshot) bool { return slices.Equal(a, b) }) {
			t.Errorf("group by %q: %d groups %v", tc.by, len(got), got)
		}
		if len(groups) != len(keys) {
			t.Errorf("group by %q: %d keys, %d groups", tc.by, len(keys), len(groups))
		}
	}
	keys, _, _ := Group(all, "host,paths")
	if keys[0].Hostname != "h1" || !slices.Equal(keys[0].Paths, []string{"/a", "/b"}) || keys[0].Tags != nil {
		t.Errorf("key %+v", keys[0])
	}
	if _, _, err := Group(all, "host,colour"); err == nil {
		t.Error("unknown group field accepted")
	}
}

// at is a local time at noon (away from daylight saving changes) d days
// after 2024-01-01, plus h hours.
func at(d, h int) time.Time {
	return time.Date(2024, 1, 1, 12, 0, 0, 0, time.Local).AddDate(0, 0, d).Add(time.Duration(h) * time.Hour)
}

func kept(ds []Decision) []int {
	var out []int
	for _, d := range ds {
		if d.Keep {
			out = append(out, int(d.Snapshot.ID[0])<<8|int(d.Snapshot.ID[1]))
		}
	}
	sort.Ints(out)
	return out
}

func TestPolicyTable(t *testing.T) {
	// 2024-01-01 is a Monday. Two snapshots a day (12:00 and 13:00) on
	// the days listed, numbered in time order.
	days := []int{0, 1, 2, 6, 7, 13, 31, 32, 60, 366, 367, 400}
	var list []*Snapshot
	for _, d := range days {
		list = append(list, snap(len(list), at(d, 0), "h", nil, nil), snap(len(list)+1, at(d, 1), "h", nil, nil))
	}
	list[4].Tags = []string{"keep"} // day 2, 12:00
	newest := len(list) - 1         // day 400, 13:00
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	for _, tc := range []struct {
		name string
		p    Policy
		want []int
	}{
		{"nothing", Policy{}, nil},
		{"last 3", Policy{Last: 3}, []int{21, 22, 23}},
		{"last all", Policy{Last: -1}, seq(0, 23)},
		// The newest snapshot of each of the 3 newest days that have one.
		{"daily 3", Policy{Daily: 3}, []int{19, 21, 23}},
		// Hours: every snapshot is in its own hour.
		{"hourly 4", Policy{Hourly: 4}, []int{20, 21, 22, 23}},
		// ISO weeks (Monday first): 2024-W01 is days 0-6 (day 6 is Sunday
		// 2024-01-07), W02 days 7-13, W05 days 31-32, W09 day 60, 2025-W01
		// days 366-367 (2025-01-01 is a Wednesday), 2025-W06 day 400.
		{"weekly 3", Policy{Weekly: 3}, []int{17, 21, 23}},
		{"weekly all", Policy{Weekly: -1}, []int{7, 11, 15, 17, 21, 23}},
		{"monthly 4", Policy{Monthly: 4}, []int{15, 17, 21, 23}},
		{"yearly 5", Policy{Yearly: 5}, []int{17, 23}},
		{"tag", Policy{Tags: []string{"keep"}}, []int{4}},
		{"tag missing", Policy{Tags: []string{"nope"}}, nil},
		// Within is measured back from the newest snapshot of the group,
		// and includes the boundary.
		{"within to day 366 13:00", Policy{Within: at(400, 1).Sub(at(366, 1))}, []int{19, 20, 21, 22, 23}},
		{"within just short of it", Policy{Within: at(400, 1).Sub(at(366, 1)) - time.Nanosecond}, []int{20, 21, 22, 23}},
		{"within 1h", Policy{Within: time.Hour}, []int{22, 23}},
		{"within 59m", Policy{Within: 59 * time.Minute}, []int{23}},
		// Rules combine: kept if any rule keeps it.
		{"last 1 + monthly 2 + tag", Policy{Last: 1, Monthly: 2, Tags: []string{"keep"}}, []int{4, 21, 23}},
		{"daily 2 + weekly 2 + yearly 1", Policy{Daily: 2, Weekly: 2, Yearly: 1}, []int{21, 23}},
		// restic's --keep-within-daily and friends: the newest snapshot of
		// each period within the duration of the newest snapshot.
		{"daily within 34d", Policy{WithinDaily: at(400, 1).Sub(at(366, 1))}, []int{19, 21, 23}},
		{"hourly within 1h", Policy{WithinHourly: time.Hour}, []int{22, 23}},
		{"weekly within 50d", Policy{WithinWeekly: 50 * 24 * time.Hour}, []int{21, 23}},
		{"monthly within 400d", Policy{WithinMonthly: 400 * 24 * time.Hour}, []int{11, 15, 17, 21, 23}},
		{"yearly within 2y", Policy{WithinYearly: 2 * 365 * 24 * time.Hour}, []int{17, 23}},
	} {
		ds := tc.p.Apply(list)
		if got := kept(ds); !slices.Equal(got, tc.want) {
			t.Errorf("%s: keeps %v, want %v", tc.name, got, tc.want)
		}
		if len(ds) != len(list) {
			t.Fatalf("%s: %d decisions for %d snapshots", tc.name, len(ds), len(list))
		}
		for i := 1; i < len(ds); i++ {
			if ds[i].Snapshot.Time.After(ds[i-1].Snapshot.Time) {
				t.Fatalf("%s: decisions not newest first", tc.name)
			}
		}
		for _, d := range ds {
			if d.Keep != (len(d.Reasons) > 0) || d.ID != d.Snapshot.ID.String() {
				t.Fatalf("%s: decision %+v", tc.name, d)
			}
		}
	}
	ds := Policy{Last: 1, Daily: 1, Tags: []string{"keep"}}.Apply(list)
	if ds[0].ID != snapIDString(newest) || !slices.Equal(ds[0].Reasons, []string{"last", "daily"}) {
		t.Errorf("reasons of the newest: %v", ds[0].Reasons)
	}
	if got := (Policy{}).Apply(nil); len(got) != 0 {
		t.Error("decisions for no snapshots")
	}
}

func snapIDString(n int) string { return snap(n, time.Time{}, "", nil, nil).ID.String() }

func seq(a, b int) []int {
	var out []int
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

// resticModel is restic's ApplyPolicy (internal/data/snapshot_policy.go,
// v0.19) for the count rules, within and tags, with bucket numbers instead
// of strings, except that restic also keeps the oldest snapshot while a
// rule has counts left; see TestPolicyMatchesRestic.
func resticModel(list []*Snapshot, p Policy) []int {
	s := slices.Clone(list)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Time.After(s[j].Time) })
	type bucket struct {
		count int
		f     func(time.Time, int) int
		last  int
	}
	buckets := []*bucket{
		{p.Last, func(_ time.Time, nr int) int { return nr }, -1},
		{p.Hourly, func(d time.Time, _ int) int { return d.Year()*1000000 + int(d.Month())*10000 + d.Day()*100 + d.Hour() }, -1},
		{p.Daily, func(d time.Time, _ int) int { return d.Year()*10000 + int(d.Month())*100 + d.Day() }, -1},
		{p.Weekly, func(d time.Time, _ int) int { y, w := d.ISOWeek(); return y*100 + w }, -1},
		{p.Monthly, func(d time.Time, _ int) int { return d.Year()*100 + int(d.Month()) }, -1},
		{p.Yearly, func(d time.Time, _ int) int { return d.Year() }, -1},
	}
	within := []*bucket{
		{int(p.WithinHourly / time.Hour), buckets[1].f, -1},
		{int(p.WithinDaily / time.Hour), buckets[2].f, -1},
		{int(p.WithinWeekly / time.Hour), buckets[3].f, -1},
		{int(p.WithinMonthly / time.Hour), buckets[4].f, -1},
		{int(p.WithinYearly / time.Hour), buckets[5].f, -1},
	}
	var keep []int
	for nr, cur := range s {
		k := false
		// restic's keep-within-hourly … yearly (count holds hours here).
		for _, b := range within {
			if b.count > 0 && !cur.Time.Before(s[0].Time.Add(-time.Duration(b.count)*time.Hour)) {
				if v := b.f(cur.Time.Local(), nr); v != b.last {
					k = true
					b.last = v
				}
			}
		}
		for _, tag := range p.Tags {
			if cur.HasTag(tag) {
				k = true
			}
		}
		if p.Within > 0 && !cur.Time.Before(s[0].Time.Add(-p.Within)) {
			k = true
		}
		for _, b := range buckets {
			if b.count > 0 || b.count == -1 {
				if v := b.f(cur.Time.Local(), nr); v != b.last {
					k = true
					b.last = v
					if b.count > 0 {
						b.count--
					}
				}
			}
		}
		if k {
			keep = append(keep, int(cur.ID[0])<<8|int(cur.ID[1]))
		}
	}
	sort.Ints(keep)
	return keep
}

// TestPolicyMatchesRestic compares random policies on random histories
// with a model of restic's algorithm. Known, deliberate differences, left
// out of the model: restic (since 0.14) also keeps the oldest snapshot of
// a group when a count rule has counts left, bunker does not; restic's
// --keep-within excludes the boundary and takes calendar units (y/m/d/h),
// bunker's includes it and takes a duration; restic's --keep-tag "a,b"
// means both tags, bunker's is one tag named "a,b"; restic buckets by the
// time zone stored in the snapshot, bunker by the local zone.
func TestPolicyMatchesRestic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)
	for round := range 300 {
		var list []*Snapshot
		seen := map[int64]bool{}
		n := 1 + rng.IntN(120)
		spread := time.Duration(1+rng.IntN(3*365*24)) * time.Hour
		for len(list) < n {
			d := time.Duration(rng.Int64N(int64(spread)/int64(time.Second))) * time.Second
			if seen[int64(d)] {
				continue
			}
			seen[int64(d)] = true
			sn := snap(len(list), start.Add(d), "h", nil, nil)
			if rng.IntN(10) == 0 {
				sn.Tags = []string{"t"}
			}
			list = append(list, sn)
		}
		r := func() int { return []int{0, 0, 1, 2, 3, 7, -1}[rng.IntN(7)] }
		p := Policy{Last: r(), Hourly: r(), Daily: r(), Weekly: r(), Monthly: r(), Yearly: r()}
		if rng.IntN(3) == 0 {
			p.Within = time.Duration(rng.IntN(60*24)) * time.Hour
		}
		if rng.IntN(3) == 0 {
			p.Tags = []string{"t"}
		}
		wr := func() time.Duration {
			if rng.IntN(3) > 0 {
				return 0
			}
			return time.Duration(1+rng.IntN(400*24)) * time.Hour
		}
		p.WithinHourly, p.WithinDaily, p.WithinWeekly, p.WithinMonthly, p.WithinYearly = wr(), wr(), wr(), wr(), wr()
		got, want := kept(p.Apply(list)), resticModel(list, p)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d, policy %+v (%s):\nbunker keeps %v\nrestic keeps %v", round, p, p, got, want)
		}
	}
}

func TestPolicyString(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, "nothing"},
		{Policy{Last: 2, Daily: -1, Within: 48 * time.Hour, Tags: []string{"a", "b"}}, "keep 2 latest, all daily, all within 48h0m0s, all with tags a,b"},
		{Policy{WithinDaily: 7 * 24 * time.Hour, WithinYearly: math.MaxInt64}, "keep daily within 168h0m0s, yearly within any time"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
		if tc.p.Empty() != (tc.want == "nothing") {
			t.Errorf("Empty of %+v", tc.p)
		}
	}
}

func TestKeepTagAllOf(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Snapshot{Time: base, Tags: []string{"a"}}
	ab := &Snapshot{Time: base.Add(time.Hour), Tags: []string{"a", "b"}}
	a.ID[0], ab.ID[0] = 1, 2
	ds := Policy{Tags: []string{"a,b"}}.Apply([]*Snapshot{a, ab})
	keep := map[*Snapshot]bool{}
	for _, d := range ds {
		keep[d.Snapshot] = d.Keep
	}
	if keep[a] || !keep[ab] {
		t.Fatalf("--keep-tag a,b kept a=%v ab=%v, want false true", keep[a], keep[ab])
	}
}

// TestPolicyWithinLongest: the longest Within (what --keep-within clamps
// an overlong duration to) keeps every snapshot, whatever times they
// claim; comparing against newest.Add(-Within) dropped those more than
// about 292 years older than the newest.
func TestPolicyWithinLongest(t *testing.T) {
	group := []*Snapshot{
		snap(1, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "h", nil, nil),
		snap(2, time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC), "h", nil, nil),
		snap(3, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "h", nil, nil),
		snap(4, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "h", nil, nil),
	}
	p := Policy{Within: time.Duration(1<<63 - 1)}
	for _, d := range p.Apply(group) {
		if !d.Keep {
			t.Errorf("snapshot of %s removed by %s", d.Snapshot.Time, p)
		}
	}
	if s := p.String(); !strings.Contains(s, "any time") {
		t.Errorf("String() = %q", s)
	}
}
