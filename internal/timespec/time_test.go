package timespec

import (
	"strings"
	"testing"
	"time"
)

// TestParseTime: RFC 3339, PostgreSQL's and MySQL's own output, local
// times and dates; refusals name the input and list the forms.
func TestParseTime(t *testing.T) {
	local := time.FixedZone("test-local", -3*3600)
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		in   string
		want time.Time // zero: refused
		err  string
	}{
		{in: "2026-11-26T09:41:00Z", want: utc("2026-11-26T09:41:00Z")},
		{in: "2026-11-26t09:41:00z", want: utc("2026-11-26T09:41:00Z")},
		{in: "2026-11-26T09:41:00.123456789+01:00", want: utc("2026-11-26T08:41:00.123456789Z")},
		// The README's example and PostgreSQL's own output.
		{in: "2026-11-26 09:41:00+00", want: utc("2026-11-26T09:41:00Z")},
		{in: "2026-12-07 00:07:21.92293+00", want: utc("2026-12-07T00:07:21.92293Z")},
		{in: "2026-12-07 05:37:21.5+05:30", want: utc("2026-12-07T00:07:21.5Z")},
		{in: "2026-12-06 16:07:21-0800", want: utc("2026-12-07T00:07:21Z")},
		{in: "2026-12-06 16:07:21 -08", want: utc("2026-12-07T00:07:21Z")},
		{in: "2026-12-07 00:07:21 UTC", want: utc("2026-12-07T00:07:21Z")},
		{in: "2026-12-07 00:07+00", want: utc("2026-12-07T00:07:00Z")},
		// MySQL's own output and other zone-less forms are local.
		{in: "2026-12-07 00:07:21.922930", want: time.Date(2026, 12, 7, 0, 7, 21, 922930000, local)},
		{in: "2026-12-07T00:07:21", want: time.Date(2026, 12, 7, 0, 7, 21, 0, local)},
		{in: "2026-12-07 00:07", want: time.Date(2026, 12, 7, 0, 7, 0, 0, local)},
		{in: "2026-12-07", want: time.Date(2026, 12, 7, 0, 0, 0, 0, local)},
		{in: " 2026-12-07 ", want: time.Date(2026, 12, 7, 0, 0, 0, 0, local)},
		{in: "2028-02-29", want: time.Date(2028, 2, 29, 0, 0, 0, 0, local)},
		// Refused.
		{in: "", err: "want a date"},
		{in: "yesterday", err: "want a date"},
		{in: "26.11.2026", err: "want a date"},
		{in: "2026-11-26X09:41", err: "T or a space"},
		{in: "2026-11-26 9:41", err: "time of day"},
		{in: "2026-11-26 09:41:00.", err: "fraction"},
		{in: "2026-11-26 09:41:00.1234567890", err: "fraction"},
		{in: "2026-11-26 09:41:00+5", err: "zone"},
		{in: "2026-11-26 09:41:00+00:00:00", err: "zone"},
		{in: "2026-11-26 09:41:00 CET", err: "zone"},
		{in: "2026-13-01", err: "month 13"},
		{in: "2026-02-29", err: "no day 29"},
		{in: "2026-11-26 24:00", err: "hour 24"},
		{in: "2026-11-26 23:60", err: "minute 60"},
		{in: "2026-11-26 23:59:60", err: "second 60"},
		{in: "2026-11-26 09:41+24", err: "zone offset"},
	} {
		got, err := ParseTimeIn(tc.in, local)
		switch {
		case tc.err == "" && (err != nil || !got.Equal(tc.want)):
			t.Errorf("ParseTimeIn(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && err == nil:
			t.Errorf("ParseTimeIn(%q) = %v; want an error saying %q", tc.in, got, tc.err)
		case tc.err != "":
			for _, w := range []string{tc.err, `"` + tc.in + `"`, "RFC 3339", "PostgreSQL", "MySQL"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseTimeIn(%q): error %q does not say %q", tc.in, err, w)
				}
			}
		}
	}
}

// FuzzParseTime: never a panic; every moment parses back from its RFC 3339
// and PostgreSQL-style spellings as the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-26T09:41:00Z", "2026-11-26 09:41:00+00", "2026-12-07 00:07:21.92293+00",
		"2026-12-07 00:07:21.922930", "2026-12-07", "2026-11-26 09:41:00 -08:30", "0000-01-01 00:00-23:59",
		"9999-12-31T23:59:59.999999999+23:59"} {
		f.Add(s)
	}
	local := time.FixedZone("test-local", 5*3600+1800)
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTimeIn(s, local)
		if err != nil {
			return
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-0700"} {
			text := tm.Format(layout)
			back, err := ParseTimeIn(text, time.UTC)
			if err != nil || !back.Equal(tm) {
				t.Fatalf("%q = %v, but %q parses as %v, %v", s, tm, text, back, err)
			}
		}
	})
}
