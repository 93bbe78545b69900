package units

import (
	"math"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1000": 1000, "256MiB": 256 << 20, "64M": 64 << 20, "1 GiB": 1 << 30, "512k": 512 << 10, "2T": 2 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5G", "12X", "9999999999T", "MiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "800": 800 << 10, "800K": 800 << 10, "5M": 5 << 20, "5MiB/s": 5 << 20, "1.5G": 3 << 29, "2MB": 2 << 20} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"fast", "-5M", "NaNM", "InfK", "1e300G"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", in, got)
		}
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"5%": 0.05, "5": 0.05, "100%": 1, "0": 0, " 12.5% ": 0.125} {
		if got, ok := ParsePercent(in); !ok || math.Abs(got-want) > 1e-12 {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"101%", "-1%", "NaN", "Inf%", "ten"} {
		if got, ok := ParsePercent(in); ok {
			t.Errorf("ParsePercent(%q) = %v, want refused", in, got)
		}
	}
}

func TestParseSubset(t *testing.T) {
	for in, want := range map[string]Subset{"10%": {Percent: 10}, "100%": {Percent: 100}, "0.5%": {Percent: 0.5},
		"500M": {Bytes: 500 << 20}, "1GiB": {Bytes: 1 << 30}, "1/5": {Part: 1, Total: 5}, "5/5": {Part: 5, Total: 5}} {
		if got, err := ParseSubset(in); err != nil || got != want {
			t.Errorf("ParseSubset(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0%", "101%", "NaN%", "0/5", "6/5", "1/0", "a/b", "5", "lots", "-5M"} {
		if got, err := ParseSubset(in); err == nil {
			t.Errorf("ParseSubset(%q) = %+v, want an error", in, got)
		}
	}
}

// FuzzParse: no input makes a parser panic or return a negative or
// out-of-range value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"256MiB", "5M", "1.5G", "10%", "", "9e18"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil && n <= 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if n, err := ParseRate(s); err == nil && (n < 0 || n > 1<<50) {
			t.Fatalf("ParseRate(%q) = %d", s, n)
		}
		if sub, err := ParseSubset(s); err == nil && (sub.Percent < 0 || sub.Percent > 100 || sub.Bytes < 0 || sub.Part > sub.Total) {
			t.Fatalf("ParseSubset(%q) = %+v", s, sub)
		}
		if v, ok := ParsePercent(s); ok && (v < 0 || v > 1 || math.IsNaN(v)) {
			t.Fatalf("ParsePercent(%q) = %v", s, v)
		}
	})
}
