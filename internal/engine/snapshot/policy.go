package snapshot

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Policy is a retention policy, with restic's semantics: each keep-N rule
// keeps the newest snapshot of each of the N most recent periods that
// have one; a snapshot is kept if any rule keeps it.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int           // -1 means unlimited
	Within                                       time.Duration // math.MaxInt64: all
	// WithinHourly … WithinYearly keep the newest snapshot of each hour
	// (day, week, month, year) that lies within that duration of the
	// newest snapshot (restic's --keep-within-hourly and so on).
	WithinHourly, WithinDaily, WithinWeekly, WithinMonthly, WithinYearly time.Duration
	Tags                                                                 []string
}

// Empty reports whether the policy keeps nothing explicitly.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 && p.Within == 0 &&
		p.WithinHourly == 0 && p.WithinDaily == 0 && p.WithinWeekly == 0 && p.WithinMonthly == 0 && p.WithinYearly == 0 && len(p.Tags) == 0
}

// withinText says a duration of the policy in words.
func withinText(d time.Duration) string {
	if d == math.MaxInt64 {
		return "any time"
	}
	return d.String()
}

func (p Policy) String() string {
	var parts []string
	add := func(name string, n int) {
		if n != 0 {
			if n < 0 {
				parts = append(parts, fmt.Sprintf("all %s", name))
			} else {
				parts = append(parts, fmt.Sprintf("%d %s", n, name))
			}
		}
	}
	add("latest", p.Last)
	add("hourly", p.Hourly)
	add("daily", p.Daily)
	add("weekly", p.Weekly)
	add("monthly", p.Monthly)
	add("yearly", p.Yearly)
	if p.Within > 0 {
		parts = append(parts, "all within "+withinText(p.Within))
	}
	for _, w := range p.withinRules() {
		if w.d > 0 {
			parts = append(parts, w.name+" within "+withinText(w.d))
		}
	}
	if len(p.Tags) > 0 {
		parts = append(parts, "all with tags "+strings.Join(p.Tags, ","))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return "keep " + strings.Join(parts, ", ")
}

// buckets name the period a local time falls in, per rule.
var buckets = map[string]func(time.Time) string{
	"hourly": func(t time.Time) string { return t.Format("2006-01-02 15") },
	"daily":  func(t time.Time) string { return t.Format("2006-01-02") },
	"weekly": func(t time.Time) string {
		y, w := t.ISOWeek()
		return fmt.Sprintf("%d-%02d", y, w)
	},
	"monthly": func(t time.Time) string { return t.Format("2006-01") },
	"yearly":  func(t time.Time) string { return t.Format("2006") },
}

type withinRule struct {
	name string
	d    time.Duration
}

func (p Policy) withinRules() []withinRule {
	return []withinRule{{"hourly", p.WithinHourly}, {"daily", p.WithinDaily}, {"weekly", p.WithinWeekly}, {"monthly", p.WithinMonthly}, {"yearly", p.WithinYearly}}
}

// Decision is the verdict on one snapshot.
type Decision struct {
	Snapshot *Snapshot `json:"-"`
	ID       string    `json:"id"`
	Keep     bool      `json:"keep"`
	Reasons  []string  `json:"reasons,omitempty"`
}

// Apply decides, for one group of snapshots (any order), which to keep.
// The result is ordered newest first.
func (p Policy) Apply(group []*Snapshot) []Decision {
	list := append([]*Snapshot(nil), group...)
	SortByTime(list)
	// newest first
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	type rule struct {
		name   string
		count  int
		bucket func(time.Time) string
		last   string
	}
	rules := []*rule{
		{name: "last", count: p.Last, bucket: func(t time.Time) string { return "" }},
		{name: "hourly", count: p.Hourly, bucket: buckets["hourly"]},
		{name: "daily", count: p.Daily, bucket: buckets["daily"]},
		{name: "weekly", count: p.Weekly, bucket: buckets["weekly"]},
		{name: "monthly", count: p.Monthly, bucket: buckets["monthly"]},
		{name: "yearly", count: p.Yearly, bucket: buckets["yearly"]},
	}
	for _, r := range rules {
		r.last = "\x00unset"
	}
	withins := p.withinRules()
	withinLast := make([]string, len(withins)) // "" is no period
	var newest time.Time
	if len(list) > 0 {
		newest = list[0].Time
	}
	out := make([]Decision, 0, len(list))
	for i, sn := range list {
		d := Decision{Snapshot: sn, ID: sn.ID.String()}
		for _, r := range rules {
			if r.count == 0 {
				continue
			}
			b := r.bucket(sn.Time.Local())
			if r.name == "last" {
				b = fmt.Sprint(i)
			}
			if b != r.last {
				r.last = b
				if r.count != 0 {
					d.Keep = true
					d.Reasons = append(d.Reasons, r.name)
					if r.count > 0 {
						r.count--
					}
				}
			}
		}
		// Sub saturates: a Within as long as a Duration holds keeps every
		// snapshot, whatever times the snapshots claim.
		if p.Within > 0 && newest.Sub(sn.Time) <= p.Within {
			d.Keep = true
			d.Reasons = append(d.Reasons, "within "+p.Within.String())
		}
		for k, w := range withins {
			if w.d <= 0 || newest.Sub(sn.Time) > w.d {
				continue
			}
			if b := buckets[w.name](sn.Time.Local()); b != withinLast[k] {
				withinLast[k] = b
				d.Keep = true
				d.Reasons = append(d.Reasons, w.name+" within "+withinText(w.d))
			}
		}
		for _, t := range p.Tags {
			// Like restic: "a,b" keeps snapshots that have both a and b.
			all := true
			for _, one := range strings.Split(t, ",") {
				if one != "" && !sn.HasTag(one) {
					all = false
					break
				}
			}
			if all {
				d.Keep = true
				d.Reasons = append(d.Reasons, "tag "+t)
				break
			}
		}
		out = append(out, d)
	}
	return out
}
