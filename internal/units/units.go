// Package units parses the sizes, rates and fractions that flags and
// plans name ("256MiB", "5M", "10%"), one grammar for all of them. It
// imports nothing of Bunker's: every layer may use it.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a positive size in bytes: "256MiB", "1GiB", "512KiB",
// "64M", "1000" (bytes). K, M, G and T are binary units.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(t[len(num):]))
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want e.g. 256MiB)", s)
	}
	return n * mult, nil
}

// ParseRate reads a transfer rate in bytes per second: a plain number is
// KiB (as restic's --limit-upload), K/M/G suffixes are binary units, a
// trailing "/s" or "B" is allowed. "" and "0" mean no limit (0).
func ParseRate(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	mult := int64(1 << 10)
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "/S"), "B")
	t = strings.TrimSuffix(t, "I")
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	v, ok := ParseFraction(t, 0, float64(int64(1)<<50)/float64(mult))
	if !ok {
		return 0, fmt.Errorf("%q is not a rate (examples: 800K, 5M, 1.5G, or a number of KiB)", s)
	}
	return int64(v * float64(mult)), nil
}

// ParseFraction reads a finite number in [lo, hi] (a percentage without
// its % sign, say); NaN and infinities are not numbers here.
func ParseFraction(s string, lo, hi float64) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return 0, false
	}
	return v, true
}

// ParsePercent reads "5%" or "5" as the fraction 0.05, within [0, 1].
func ParsePercent(s string) (float64, bool) {
	v, ok := ParseFraction(strings.TrimSuffix(strings.TrimSpace(s), "%"), 0, 100)
	return v / 100, ok
}

// Subset is the part of a repository's data a check reads: Percent of
// the packs (chosen at random), packs adding up to Bytes, or the Part-th
// of Total slices. One of them is set.
type Subset struct {
	Percent     float64
	Bytes       int64
	Part, Total int
}

// ParseSubset reads the grammar of check's --read-data-subset and a
// plan's read_data_subset: "N%" (0 < N <= 100), a size such as "500M",
// or "n/t" (1 <= n <= t). Its errors say what is wanted, not what was
// given: the caller names the value and where it came from.
func ParseSubset(s string) (Subset, error) {
	if s == "" {
		return Subset{}, fmt.Errorf("want N%%, n/t or a size such as 500M")
	}
	if strings.HasSuffix(s, "%") {
		p, ok := ParseFraction(strings.TrimSuffix(s, "%"), 0, 100)
		if !ok || p == 0 {
			return Subset{}, fmt.Errorf("want a percentage in (0,100]")
		}
		return Subset{Percent: p}, nil
	}
	if last := s[len(s)-1]; !strings.Contains(s, "/") && (last < '0' || last > '9') {
		size, err := ParseSize(s)
		if err != nil {
			return Subset{}, fmt.Errorf("want N%%, n/t or a size such as 500M")
		}
		return Subset{Bytes: size}, nil
	}
	n, t, ok := strings.Cut(s, "/")
	ni, err1 := strconv.Atoi(n)
	ti, err2 := strconv.Atoi(t)
	if !ok || err1 != nil || err2 != nil || ti < 1 || ni < 1 || ni > ti {
		return Subset{}, fmt.Errorf("want N%% or n/t with 1 <= n <= t")
	}
	return Subset{Part: ni, Total: ti}, nil
}
