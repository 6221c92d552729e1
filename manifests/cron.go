package manifests

import (
	"fmt"
	"time"
)

// cronHorizon is how far ahead a schedule must have a time: February 29th comes every four
// years, and an expression without a time in that span never fires (`0 2 31 2 *`).
const cronHorizon = 4 * 366 * 24 * time.Hour

// CheckCron parses a cron expression (ParseCron) and checks it has a time within the next four
// years in the time zone tz ("" is UTC), from now.
func CheckCron(expr, tz string, now time.Time) error {
	s, err := ParseCron(expr)
	if err != nil {
		return err
	}
	loc := time.UTC
	if tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	from := now.In(loc)
	if next := s.Next(from); next.IsZero() || next.Sub(from) > cronHorizon {
		return fmt.Errorf("%q never fires: it has no time in the next four years", expr)
	}
	return nil
}
