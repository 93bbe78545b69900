package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every count and duration flag is range-checked in one place, before any
// command runs (checkFlagRanges, from the root's PersistentPreRunE): a
// negative value is refused unless the flag says otherwise with
// flagRange. Overflow is refused by the flag parsers themselves
// (strconv.ParseInt and time.ParseDuration report out-of-range values),
// and their errors name the flag too.

// durationFlags makes every duration flag of cmd and its subcommands
// take the timespec grammar (7d, 1y, 1h30m), as plans do, instead of Go's
// time.ParseDuration: one grammar for flags and plans. A lone m stays
// minutes, as in Go.
func durationFlags(cmd *cobra.Command) {
	wrap := func(f *pflag.Flag) {
		if _, done := f.Value.(durationValue); !done && f.Value.Type() == "duration" {
			f.Value = durationValue{f.Value}
		}
	}
	cmd.Flags().VisitAll(wrap)
	cmd.PersistentFlags().VisitAll(wrap)
	for _, c := range cmd.Commands() {
		durationFlags(c)
	}
}

// durationValue is a pflag duration parsed by timespec.ParseDuration; it
// stores the value through the flag's own Value (Go's spelling of a
// duration is in the grammar, and pflag's parser reads it exactly).
type durationValue struct{ pflag.Value }

func (v durationValue) Set(s string) error {
	// A negative value is stored as such for checkFlagRange to refuse
	// with the flag's own range ("must be longer than zero").
	neg, abs := "", strings.TrimSpace(s)
	if strings.HasPrefix(abs, "-") {
		neg, abs = "-", abs[1:]
	}
	d, err := timespec.ParseDuration(abs)
	if err != nil && neg != "" {
		return fmt.Errorf("%q: %w", s, err)
	}
	if err != nil {
		return err
	}
	return v.Value.Set(neg + d.String())
}

// Annotation keys holding a flag's accepted range, in its own unit: a
// count, or nanoseconds for a duration.
const (
	annMin = "bunker-min"
	annMax = "bunker-max"
)

// unbounded is the max of flagRange for a flag with no upper bound.
const unbounded = math.MaxInt64

// flagRange sets the accepted range of the int or duration flags names of
// fs: min and max are counts, or nanoseconds for durations (so min 1 on
// a duration means "longer than zero"). A name fs lacks is a programming
// error, found by any test that builds the commands.
func flagRange(fs *pflag.FlagSet, min, max int64, names ...string) {
	for _, name := range names {
		if err := fs.SetAnnotation(name, annMin, []string{strconv.FormatInt(min, 10)}); err != nil {
			panic(fmt.Sprintf("flagRange: %v", err))
		}
		if err := fs.SetAnnotation(name, annMax, []string{strconv.FormatInt(max, 10)}); err != nil {
			panic(fmt.Sprintf("flagRange: %v", err))
		}
	}
}

// checkFlagRanges refuses a count or duration flag given a value out of
// its range (by default: a negative one).
func checkFlagRanges(cmd *cobra.Command) error {
	var first error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if first != nil || !f.Changed {
			return
		}
		if err := checkFlagRange(f); err != nil {
			first = err
		}
	})
	return first
}

func checkFlagRange(f *pflag.Flag) error {
	var v int64
	duration := false
	switch f.Value.Type() {
	case "int", "int8", "int16", "int32", "int64":
		n, err := strconv.ParseInt(f.Value.String(), 0, 64)
		if err != nil {
			return fmt.Errorf("--%s %s: %w", f.Name, f.Value, err)
		}
		v = n
	case "duration":
		// The Value's own spelling: Go's, from time.Duration.String.
		d, err := time.ParseDuration(f.Value.String())
		if err != nil {
			return fmt.Errorf("--%s %s: %w", f.Name, f.Value, err)
		}
		v, duration = int64(d), true
	default:
		return nil
	}
	lo, hi := int64(0), int64(unbounded)
	if s := f.Annotations[annMin]; len(s) == 1 {
		lo, _ = strconv.ParseInt(s[0], 10, 64)
	}
	if s := f.Annotations[annMax]; len(s) == 1 {
		hi, _ = strconv.ParseInt(s[0], 10, 64)
	}
	switch {
	case v < lo && lo == 0:
		return fmt.Errorf("--%s %s: must not be negative", f.Name, f.Value)
	case v < lo && lo == -1:
		return fmt.Errorf("--%s %s: want a count, or -1 for all", f.Name, f.Value)
	case v < lo && duration && lo == 1:
		return fmt.Errorf("--%s %s: must be longer than zero", f.Name, f.Value)
	case v < lo && duration:
		return fmt.Errorf("--%s %s: must be at least %s", f.Name, f.Value, time.Duration(lo))
	case v < lo:
		return fmt.Errorf("--%s %s: must be at least %d", f.Name, f.Value, lo)
	case v > hi && duration:
		return fmt.Errorf("--%s %s: must be at most %s", f.Name, f.Value, time.Duration(hi))
	case v > hi:
		return fmt.Errorf("--%s %s: must be at most %d", f.Name, f.Value, hi)
	}
	return nil
}
