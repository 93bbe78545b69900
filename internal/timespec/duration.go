package timespec

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrTooLong is wrapped by the error for a duration longer than a
// time.Duration holds. A caller for which "longer than anything" is
// meaningful (--keep-within: keep every snapshot) may clamp instead.
var ErrTooLong = errors.New("too long")

// Longest is the longest duration: what a caller that clamps a duration
// ErrTooLong refused uses instead.
const Longest = time.Duration(math.MaxInt64)

// unitHint lists the units, for errors.
const unitHint = "units: y, mo, w, d, h, min (or m), s, ms, us, ns; e.g. 90s, 15min, 1h30m, 7d, 1y6mo"

// A unit is one of the grammar's units; rank orders them by size so that
// parts can be required largest first.
type unit struct {
	size time.Duration
	rank int
}

var (
	year   = unit{365 * 24 * time.Hour, 9}
	month  = unit{30 * 24 * time.Hour, 8}
	week   = unit{7 * 24 * time.Hour, 7}
	day    = unit{24 * time.Hour, 6}
	hour   = unit{time.Hour, 5}
	minute = unit{time.Minute, 4}
	second = unit{time.Second, 3}
	milli  = unit{time.Millisecond, 2}
	micro  = unit{time.Microsecond, 1}
	nano   = unit{time.Nanosecond, 0}
)

// units maps a unit's name to it; "m" is not here: its meaning depends on
// its neighbours (resolveM).
var units = map[string]unit{
	"y": year, "mo": month, "w": week, "d": day, "h": hour, "min": minute,
	"s": second, "ms": milli, "us": micro, "µs": micro, "μs": micro, "ns": nano,
}

// A part is one NUMBER UNIT of a duration: whole and frac (frac/scale,
// scale a power of ten) hold the number.
type part struct {
	whole       uint64
	frac, scale uint64
	overflow    bool   // whole does not fit a uint64
	text        string // the number as written
	name        string
	unit        unit
}

// ParseDuration parses a duration of the grammar described in the
// package documentation; a lone m is minutes.
func ParseDuration(s string) (time.Duration, error) {
	d, _, err := parse(s, false)
	return d, err
}

// ParseRetention parses a retention duration: the grammar of
// ParseDuration, but an m that its neighbours do not make minutes or
// months is refused, since restic's --keep-within reads it as months.
func ParseRetention(s string) (time.Duration, error) {
	d, _, err := parse(s, true)
	return d, err
}

// parse parses s; months reports whether an m was read as months (for
// tests). strict refuses an m its neighbours leave undecided.
func parse(s string, strict bool) (d time.Duration, months bool, err error) {
	fail := func(format string, args ...any) (time.Duration, bool, error) {
		return 0, false, fmt.Errorf("%q is not a duration: "+format, append([]any{s}, args...)...)
	}
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return fail("empty (%s)", unitHint)
	case in[0] == '-':
		return 0, false, fmt.Errorf("%q is negative (a duration is 0 or more)", s)
	case in == "0":
		return 0, false, nil
	}
	var parts []part
	for rest := in; rest != ""; {
		var p part
		var ok bool
		if p, rest, ok = number(rest); !ok {
			return fail("want NUMBER UNIT parts (%s)", unitHint)
		}
		i := 0
		for i < len(rest) && (rest[i] < '0' || rest[i] > '9') && rest[i] != '.' {
			i++
		}
		p.name, rest = rest[:i], rest[i:]
		switch u, known := units[p.name]; {
		case p.name == "" && rest == "":
			return fail("a number needs a unit (%s)", unitHint)
		case p.name == "":
			return fail("want NUMBER UNIT parts (%s)", unitHint)
		case known:
			p.unit = u
		case p.name != "m":
			return fail("unknown unit %q (%s)", p.name, unitHint)
		}
		parts = append(parts, p)
	}
	for i := range parts {
		if parts[i].name != "m" {
			continue
		}
		u, err := resolveM(parts, i, strict)
		if err != nil {
			return fail("%v", err)
		}
		parts[i].unit = u
		months = months || u == month
	}
	var total uint64
	for i, p := range parts {
		if i > 0 && p.unit.rank > parts[i-1].unit.rank {
			return fail("write units largest first (%s%s after %s%s)", p.text, p.name, parts[i-1].text, parts[i-1].name)
		}
		v, ok := p.value()
		if !ok || v > math.MaxInt64-total {
			return 0, false, fmt.Errorf("invalid duration %q: %w (at most %v, about 292 years)", s, ErrTooLong, Longest)
		}
		total += v
	}
	return time.Duration(total), months, nil
}

// resolveM decides what the m of parts[i] is: minutes after h or before
// a unit smaller than a minute, months after y or before w, d or h.
func resolveM(parts []part, i int, strict bool) (unit, error) {
	var prev, next string
	if i > 0 {
		prev = parts[i-1].name
	}
	if i+1 < len(parts) {
		next = parts[i+1].name
	}
	isMin := prev == "h" || next == "s" || next == "ms" || next == "us" || next == "µs" || next == "μs" || next == "ns"
	isMonth := prev == "y" || next == "w" || next == "d" || next == "h"
	n := parts[i].text
	switch {
	case isMin && isMonth:
		return unit{}, fmt.Errorf("%sm is ambiguous here: write %smin for minutes or %smo for months", n, n, n)
	case isMin:
		return minute, nil
	case isMonth:
		return month, nil
	case strict:
		return unit{}, fmt.Errorf("%sm is ambiguous: write %smin for minutes or %smo for months (restic's m)", n, n, n)
	}
	return minute, nil
}

// number reads the leading NUMBER of s: digits with an optional fraction,
// at least one digit in all.
func number(s string) (part, string, bool) {
	var p part
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if p.whole > (math.MaxUint64-9)/10 {
			p.overflow = true
		}
		p.whole = p.whole*10 + uint64(s[i]-'0')
	}
	digits := i
	p.scale = 1
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
			// Digits past what a uint64 holds change nothing a
			// time.Duration can show: drop them, as time.ParseDuration
			// does.
			if p.scale <= (math.MaxUint64-9)/10 && p.frac <= (math.MaxUint64-9)/10 {
				p.frac = p.frac*10 + uint64(s[i]-'0')
				p.scale *= 10
			}
		}
	}
	p.text = s[:i]
	return p, s[i:], digits > 0
}

// value is p in nanoseconds; false when it is more than an int64 holds.
func (p part) value() (uint64, bool) {
	size := uint64(p.unit.size)
	if p.overflow || p.whole > math.MaxInt64/size {
		return 0, false
	}
	v := p.whole * size
	if p.frac > 0 {
		// As time.ParseDuration: float64 is exact enough for the
		// fraction of one unit.
		v += uint64(float64(p.frac) * (float64(size) / float64(p.scale)))
	}
	return v, v <= math.MaxInt64
}
