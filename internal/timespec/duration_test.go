package timespec

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	day_   = 24 * time.Hour
	month_ = 30 * day_
	year_  = 365 * day_
)

// TestParseDuration: the grammar's values, Go's and restic's spellings,
// and what is refused, with the words the error must hold.
func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in        string
		want      time.Duration
		err       string // ParseDuration's error, if any
		retention string // ParseRetention's error where it differs: "ok" for none
	}{
		// Go's durations mean what they mean in Go.
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "5m30s", want: 5*time.Minute + 30*time.Second},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "300ms", want: 300 * time.Millisecond},
		{in: "1.5µs", want: 1500 * time.Nanosecond},
		{in: "2us", want: 2 * time.Microsecond},
		{in: "72h3m0.5s", want: 72*time.Hour + 3*time.Minute + 500*time.Millisecond},
		{in: "2562047h47m16.854775807s", want: Longest},
		// A lone m is minutes, but not in a retention duration.
		{in: "15m", want: 15 * time.Minute, retention: "write 15min for minutes or 15mo for months"},
		{in: "7d5m", want: 7*day_ + 5*time.Minute, retention: "ambiguous"},
		{in: "15min", want: 15 * time.Minute},
		// Bunker's and restic's units; m next to y, w, d or h is months.
		{in: "7d", want: 7 * day_},
		{in: "2w1d", want: 15 * day_},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "6mo", want: 6 * month_},
		{in: "1y", want: year_},
		{in: "1y6m", want: year_ + 6*month_},
		{in: "6m15d", want: 6*month_ + 15*day_},
		{in: "1y5m7d2h", want: year_ + 5*month_ + 7*day_ + 2*time.Hour},
		{in: "5m2h", want: 5*month_ + 2*time.Hour},
		{in: "1d2h30m", want: day_ + 2*time.Hour + 30*time.Minute},
		{in: "200y200y", err: "too long", retention: "too long"},
		{in: "1d1d", want: 2 * day_},
		{in: " 1h ", want: time.Hour},
		// Refused.
		{in: "", err: "empty"},
		{in: "-5m", err: "negative"},
		{in: "-5d", err: "negative"},
		{in: "5", err: "needs a unit"},
		{in: "5x", err: "unknown unit"},
		{in: "5M", err: "unknown unit"},
		{in: "1.2.3h", err: "not a duration"},
		{in: ".d", err: "not a duration"},
		{in: "h", err: "not a duration"},
		{in: "1h 30m", err: "unknown unit"},
		{in: "+5m", err: "not a duration"},
		{in: "1y5m30s", err: "ambiguous here"},
		{in: "1h5m2h", err: "ambiguous here"},
		{in: "30s1m", err: "largest first", retention: "ambiguous"},
		{in: "1d5m1h", err: "largest first"},
		{in: "1h1d", err: "largest first"},
		// Too long is an error, never a wrapped value.
		{in: "293y", err: "too long"},
		{in: "110000d", err: "too long"},
		{in: "9999999h", err: "invalid duration"},
		{in: "2562047h48m", err: "too long"},
		{in: "99999999999999999999999y", err: "too long"},
		{in: "100000d100000d", err: "too long"},
	} {
		for _, retention := range []bool{false, true} {
			parse, name, wantErr := ParseDuration, "ParseDuration", tc.err
			if retention {
				parse, name = ParseRetention, "ParseRetention"
				switch tc.retention {
				case "":
				case "ok":
					wantErr = ""
				default:
					wantErr = tc.retention
				}
			}
			got, err := parse(tc.in)
			switch {
			case wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("%s(%q) = %v, %v; want %v", name, tc.in, got, err, tc.want)
			case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
				t.Errorf("%s(%q) = %v, %v; want an error saying %q", name, tc.in, got, err, wantErr)
			case wantErr != "" && !strings.Contains(err.Error(), tc.in) && strings.TrimSpace(tc.in) != "":
				t.Errorf("%s(%q): error %q does not name the input", name, tc.in, err)
			}
		}
	}
}

func TestTooLongIsErrTooLong(t *testing.T) {
	for _, s := range []string{"293y", "99999999999999999999999y", "200y200y"} {
		if _, err := ParseRetention(s); !errors.Is(err, ErrTooLong) {
			t.Errorf("ParseRetention(%q): %v, want ErrTooLong", s, err)
		}
	}
	if _, err := ParseRetention("5x"); errors.Is(err, ErrTooLong) {
		t.Errorf("ParseRetention(5x) is ErrTooLong")
	}
}

// FuzzParseDuration: never a panic, never a negative value; every value
// parses back from its Go spelling; a retention value is the same
// duration; and a string Go also reads means the same here unless an m
// was read as months (restic's reading).
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "90s", "1h30m", "15m", "1y5m7d2h", "6mo", "1.5d", "2562047h47m16.854775807s",
		"5m2h", "1y5m30s", "-1h", "1.2.3h", "99999999999999999999y", "1.000000000000000000001s", ".5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, months, err := parse(s, false)
		rd, rerr := ParseRetention(s)
		if err != nil {
			if rerr == nil {
				t.Fatalf("ParseRetention(%q) = %v but ParseDuration fails: %v", s, rd, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
		if rerr == nil && rd != d {
			t.Fatalf("ParseRetention(%q) = %v, ParseDuration = %v", s, rd, d)
		}
		for _, p := range []func(string) (time.Duration, error){ParseDuration, ParseRetention} {
			if back, err := p(d.String()); err != nil || back != d {
				t.Fatalf("%q = %v, but %q parses as %v, %v", s, d, d.String(), back, err)
			}
		}
		if g, gerr := time.ParseDuration(strings.TrimSpace(s)); gerr == nil && !months && g != d {
			t.Fatalf("%q is %v here and %v in Go", s, d, g)
		}
	})
}
