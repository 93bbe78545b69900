package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/robfig/cron/v3"
)

// Schedule says when something runs next.
type Schedule interface {
	// Next returns the first run time strictly after t.
	Next(t time.Time) time.Time
	String() string
}

// ParseSchedule parses a cron expression (minute hour day-of-month month
// day-of-week, in the daemon's local time zone; CRON_TZ=Zone prefixes
// and @hourly/@daily/@weekly/@monthly descriptors work) or "every
// DURATION" (runs at multiples of DURATION since the Unix epoch, so a
// schedule means the same after a restart).
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "every "); ok {
		d, err := timespec.ParseDuration(rest)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %v", s, err)
		}
		if d < time.Minute {
			return nil, fmt.Errorf("schedule %q: run at most once a minute", s)
		}
		return every{d: d, text: s}, nil
	}
	c, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v", s, err)
	}
	return cronSchedule{c: c, text: s}, nil
}

type every struct {
	d    time.Duration
	text string
}

func (e every) Next(t time.Time) time.Time {
	return t.Truncate(e.d).Add(e.d)
}

func (e every) String() string { return e.text }

type cronSchedule struct {
	c    cron.Schedule
	text string
}

func (c cronSchedule) Next(t time.Time) time.Time { return c.c.Next(t) }
func (c cronSchedule) String() string             { return c.text }
