package timespec

import (
	"fmt"
	"strings"
	"time"
)

// timeHint lists the accepted forms of a moment, for errors.
const timeHint = "use 2026-11-26T09:41:00Z (RFC 3339), 2026-11-26 09:41:00.123456+00 (as PostgreSQL prints it), " +
	"2026-11-26 09:41:00.123456 (as MySQL prints it; local time) or 2026-11-26 (local midnight)"

// ParseTime parses a moment of the grammar described in the package
// documentation; one without a zone is in the local time zone.
func ParseTime(s string) (time.Time, error) {
	return ParseTimeIn(s, time.Local)
}

// ParseTimeIn is ParseTime with loc as the zone of a moment written
// without one.
func ParseTimeIn(s string, loc *time.Location) (time.Time, error) {
	t, err := parseTime(strings.TrimSpace(s), loc)
	if err != "" {
		return time.Time{}, fmt.Errorf("%q is not a time (%s): %s", s, err, timeHint)
	}
	return t, nil
}

// parseTime parses s, or says what is wrong with it.
func parseTime(s string, loc *time.Location) (time.Time, string) {
	r := reader{s: s}
	year := r.digits(4)
	r.expect('-')
	month := r.digits(2)
	r.expect('-')
	day := r.digits(2)
	if r.bad {
		return time.Time{}, "want a date YYYY-MM-DD first"
	}
	var hour, min, sec, nsec int
	if !r.done() {
		if c := r.next(); c != 'T' && c != 't' && c != ' ' {
			return time.Time{}, "want T or a space between date and time"
		}
		hour = r.digits(2)
		r.expect(':')
		min = r.digits(2)
		if r.bad {
			return time.Time{}, "want a time of day HH:MM[:SS[.FRACTION]]"
		}
		if r.peek() == ':' {
			r.next()
			sec = r.digits(2)
			if r.peek() == '.' {
				r.next()
				n := 0
				for ; n < 10 && r.peek() >= '0' && r.peek() <= '9'; n++ {
					nsec = nsec*10 + int(r.next()-'0')
				}
				if n == 0 || n > 9 {
					return time.Time{}, "want 1 to 9 digits of a second's fraction"
				}
				for ; n < 9; n++ {
					nsec *= 10
				}
			}
			if r.bad {
				return time.Time{}, "want seconds as SS[.FRACTION]"
			}
		}
		if !r.done() {
			z, msg := r.zone()
			if msg != "" {
				return time.Time{}, msg
			}
			loc = z
		}
	}
	switch {
	case month < 1 || month > 12:
		return time.Time{}, fmt.Sprintf("month %02d", month)
	case day < 1 || day > daysIn(time.Month(month), year):
		return time.Time{}, fmt.Sprintf("%s has no day %02d", time.Month(month), day)
	case hour > 23:
		return time.Time{}, fmt.Sprintf("hour %02d", hour)
	case min > 59:
		return time.Time{}, fmt.Sprintf("minute %02d", min)
	case sec > 59:
		return time.Time{}, fmt.Sprintf("second %02d", sec)
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, nsec, loc), ""
}

// zone reads the rest of the input as a zone: an optional space, then Z,
// UTC, or an offset +HH, +HHMM or +HH:MM (or -).
func (r *reader) zone() (*time.Location, string) {
	const want = "want a zone Z, UTC, +HH, +HHMM or +HH:MM at the end"
	if r.peek() == ' ' {
		r.next()
	}
	switch rest := r.s[r.i:]; rest {
	case "Z", "z", "UTC":
		return time.UTC, ""
	}
	sign := 1
	switch r.next() {
	case '+':
	case '-':
		sign = -1
	default:
		return nil, want
	}
	h, m := r.digits(2), 0
	if !r.done() {
		if r.peek() == ':' {
			r.next()
		}
		m = r.digits(2)
	}
	switch {
	case r.bad || !r.done():
		return nil, want
	case h > 23 || m > 59:
		return nil, fmt.Sprintf("zone offset %02d:%02d", h, m)
	}
	return time.FixedZone("", sign*(h*3600+m*60)), ""
}

// reader reads s from the left; bad records that an expectation failed.
type reader struct {
	s   string
	i   int
	bad bool
}

func (r *reader) done() bool { return r.i >= len(r.s) }

func (r *reader) peek() byte {
	if r.done() {
		return 0
	}
	return r.s[r.i]
}

func (r *reader) next() byte {
	c := r.peek()
	if !r.done() {
		r.i++
	}
	return c
}

func (r *reader) expect(c byte) {
	if r.next() != c {
		r.bad = true
	}
}

// digits reads exactly n decimal digits.
func (r *reader) digits(n int) int {
	v := 0
	for range n {
		c := r.next()
		if c < '0' || c > '9' {
			r.bad = true
			return 0
		}
		v = v*10 + int(c-'0')
	}
	return v
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
