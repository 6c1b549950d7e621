// Package sla is the SLA clock: a service window (open days and hours in a time zone, minus public holidays)
// and the arithmetic of response targets counted in service-window time only. A target of 15 minutes set at
// 18:55 on a Friday falls due at 07:10 on the next business day.
//
// The Luxembourg public holidays are computed per year (Easter-based ones included); a Calendar may add
// further dates or use no computed holidays at all. The time zone database is embedded (time/tzdata), so
// Europe/Luxembourg loads on a machine without one.
package sla

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Luxembourg must load everywhere.
)

// Date is a calendar day, without a time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String is the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// ParseDate reads a YYYY-MM-DD date.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// dateOf is the day of t in t's location.
func dateOf(t time.Time) Date { return Date{t.Year(), t.Month(), t.Day()} }

// Easter returns Easter Sunday of year (Gregorian calendar; the anonymous algorithm of Meeus/Jones/Butcher).
func Easter(year int) Date {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return Date{year, time.Month(month), day}
}

// addDays returns d moved by n days.
func (d Date) addDays(n int) Date {
	return dateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// LuxembourgHolidays returns the legal public holidays of Luxembourg in year, in calendar order: New Year's
// Day, Easter Monday, Labour Day (1 May), Europe Day (9 May), Ascension Day, Whit Monday, the National Day
// (23 June), Assumption (15 August), All Saints' Day (1 November), Christmas Day and St Stephen's Day.
func LuxembourgHolidays(year int) []Date {
	e := Easter(year)
	out := []Date{
		{year, time.January, 1},
		e.addDays(1), // Easter Monday
		{year, time.May, 1},
		{year, time.May, 9},
		e.addDays(39), // Ascension Day
		e.addDays(50), // Whit Monday
		{year, time.June, 23},
		{year, time.August, 15},
		{year, time.November, 1},
		{year, time.December, 25},
		{year, time.December, 26},
	}
	slices.SortFunc(out, func(a, b Date) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Window is a service window: the days and hours during which the SLA clock runs.
type Window struct {
	// Location is the window's time zone.
	Location *time.Location
	// Days are the open weekdays.
	Days []time.Weekday
	// Open and Close are the opening and closing times, as offsets from midnight (07:00 is 7h). The clock
	// runs in [Open, Close) local time on open days; Close must be after Open.
	Open, Close time.Duration
	// Luxembourg closes the window on the Luxembourg public holidays of every year.
	Luxembourg bool
	// Extra are further closed days.
	Extra []Date
}

// DefaultWindow is Monday to Friday, 07:00 to 19:00 Europe/Luxembourg, closed on Luxembourg public
// holidays.
func DefaultWindow() Window {
	loc, err := time.LoadLocation("Europe/Luxembourg")
	if err != nil {
		panic(err) // embedded by time/tzdata
	}
	return Window{Location: loc, Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
		Open: 7 * time.Hour, Close: 19 * time.Hour, Luxembourg: true}
}

// Validate checks the window.
func (w Window) Validate() error {
	switch {
	case w.Location == nil:
		return errors.New("no time zone")
	case len(w.Days) == 0:
		return errors.New("no open day")
	case w.Open < 0 || w.Close > 24*time.Hour || w.Close <= w.Open:
		return errors.New("the closing time must be after the opening time, both within the day")
	}
	return nil
}

// Holiday reports whether d is a closed day of the window besides its weekly closed days.
func (w Window) Holiday(d Date) bool {
	if slices.Contains(w.Extra, d) {
		return true
	}
	return w.Luxembourg && slices.Contains(LuxembourgHolidays(d.Year), d)
}

// openDay reports whether the clock runs at all on day d.
func (w Window) openDay(d Date) bool {
	wd := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
	return slices.Contains(w.Days, wd) && !w.Holiday(d)
}

// span returns the open interval of day d as instants (local wall-clock times, so a DST change that day
// moves them with the clock on the wall).
func (w Window) span(d Date) (from, to time.Time) {
	mid := func(off time.Duration) time.Time {
		h, m := int(off/time.Hour), int(off%time.Hour/time.Minute)
		return time.Date(d.Year, d.Month, d.Day, h, m, 0, 0, w.Location)
	}
	return mid(w.Open), mid(w.Close)
}

// maxScan bounds the days searched for open time (a window with every day a holiday never ends).
const maxScan = 3700

// IsOpen reports whether the clock runs at t.
func (w Window) IsOpen(t time.Time) bool {
	d := dateOf(t.In(w.Location))
	if !w.openDay(d) {
		return false
	}
	from, to := w.span(d)
	return !t.Before(from) && t.Before(to)
}

// Add returns the instant at which d of service-window time has passed since t: the due time of a
// target d set at t. Add(t, 0) is t when the window is open at t, else the next opening.
func (w Window) Add(t time.Time, d time.Duration) time.Time {
	day := dateOf(t.In(w.Location))
	for range maxScan {
		if w.openDay(day) {
			from, to := w.span(day)
			start := from
			if t.After(start) {
				start = t
			}
			if start.Before(to) {
				left := to.Sub(start)
				if d <= left {
					return start.Add(d)
				}
				d -= left
			}
		}
		day = day.addDays(1)
	}
	return t.Add(d) // unreachable with a valid window
}

// Between returns the service-window time from a to b (0 when b is not after a).
func (w Window) Between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	var total time.Duration
	day := dateOf(a.In(w.Location))
	last := dateOf(b.In(w.Location))
	for range maxScan {
		if w.openDay(day) {
			from, to := w.span(day)
			if a.After(from) {
				from = a
			}
			if b.Before(to) {
				to = b
			}
			if to.After(from) {
				total += to.Sub(from)
			}
		}
		if day == last {
			break
		}
		day = day.addDays(1)
	}
	return total
}
