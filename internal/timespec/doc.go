// Package timespec is Bunker's one grammar for durations and moments,
// used by every flag and every plan field that takes one, so that nothing
// means two things in two places. It imports only the standard library:
// every layer may use it.
//
// # Durations
//
// A duration is one or more NUMBER UNIT parts, largest unit first, with
// no spaces and no sign: "90s", "15min", "1h30m", "7d", "2w1d", "6mo",
// "1y6mo", "1.5d". Units:
//
//	y        year, 365 days     mo   month, 30 days     w    week, 7 days
//	d        day, 24 hours      h    hour               min  minute
//	s        second             ms, us (µs), ns         as in Go
//	m        minute or month, by its neighbours (below)
//
// Years and months are fixed lengths, not calendar steps. "0" alone is
// zero. A unit may repeat ("1d1d" is 2d) but never follow a smaller one:
// "30s1m" is refused, not read as Go would.
//
// m is read by its neighbours. It is minutes right after h or right
// before s, ms, us or ns (Go's 1h30m, 5m30s); months right after y or
// right before w, d or h (restic's 1y5m7d2h, 6m15d). With both it is
// refused as ambiguous. With neither (a bare "15m", or "7d5m") it is
// minutes, as in Go — except in retention durations (ParseRetention:
// --keep-within, a plan's keep_within, an Object Lock --retention), where
// restic reads it as months: there it is refused with a hint to write mo
// or min. So every value restic's --keep-within takes either means what
// it means in restic or is refused; "1h30m", 30 months and 1 hour to
// restic, is 90 minutes here, as the order of its units says.
//
// Every Go duration of Duration.String (e.g. "2562047h47m16.854775807s")
// parses back to itself. A duration longer than a time.Duration holds
// (about 292 years) is ErrTooLong, never a wrapped value.
//
// # Moments
//
// A moment (a recovery target, --repo-as-of, status --at) is a date, or a
// date and a time of day, with an optional zone:
//
//	2026-11-26T09:41:00Z              RFC 3339 (T or a space; lower case t, z too)
//	2026-11-26 09:41:00+00            PostgreSQL's own output: zone +HH, +HHMM or +HH:MM
//	2026-12-07 00:07:21.92293+00      fractions of a second: 1 to 9 digits
//	2026-12-07 00:07:21.922930        MySQL's own output: no zone
//	2026-11-26 09:41                  seconds may be left out
//	2026-11-26                        midnight
//
// A zone is Z, UTC, or an offset; a space may come before it. Without a
// zone the moment is in the local time zone of the machine running bunker
// (ParseTimeIn takes another). Anything else is refused with an error that
// lists these forms.
package timespec
