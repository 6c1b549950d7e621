package sla

import (
	"slices"
	"testing"
	"time"
)

func lux(t *testing.T, s string) time.Time {
	t.Helper()
	w := DefaultWindow()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, w.Location)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEaster(t *testing.T) {
	for year, want := range map[int]string{2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05",
		2027: "2027-03-28", 2038: "2038-04-25", 2285: "2285-03-22", 1943: "1943-04-25"} {
		if got := Easter(year).String(); got != want {
			t.Errorf("Easter %d = %s, want %s", year, got, want)
		}
	}
}

func TestLuxembourgHolidays(t *testing.T) {
	var got []string
	for _, d := range LuxembourgHolidays(2026) {
		got = append(got, d.String())
	}
	want := []string{"2026-01-01", "2026-04-06", "2026-05-01", "2026-05-09", "2026-05-14", "2026-05-25",
		"2026-06-23", "2026-08-15", "2026-11-01", "2026-12-25", "2026-12-26"}
	if !slices.Equal(got, want) {
		t.Fatalf("2026 holidays\n got %v\nwant %v", got, want)
	}
	// 2025: Easter 20 April, so Ascension on 29 May and Whit Monday on 9 June.
	h := LuxembourgHolidays(2025)
	for _, d := range []Date{{2025, 4, 21}, {2025, 5, 29}, {2025, 6, 9}} {
		if !slices.Contains(h, d) {
			t.Errorf("%s missing from 2025 holidays %v", d, h)
		}
	}
}

// TestAddAcrossEveningsWeekendsHolidaysAndDST checks due times of response targets set at given moments.
func TestAddAcrossEveningsWeekendsHolidaysAndDST(t *testing.T) {
	w := DefaultWindow()
	for _, c := range []struct {
		name, at string
		d        time.Duration
		want     string
	}{
		{"inside the window", "2026-03-02 10:00", 15 * time.Minute, "2026-03-02 10:15"},
		{"ends exactly at closing", "2026-03-02 18:45", 15 * time.Minute, "2026-03-02 19:00"},
		{"evening: continues next morning", "2026-03-02 18:50", 15 * time.Minute, "2026-03-03 07:05"},
		{"opened at night", "2026-03-03 02:00", 15 * time.Minute, "2026-03-03 07:15"},
		{"opened after closing", "2026-03-03 21:30", 30 * time.Minute, "2026-03-04 07:30"},
		{"friday evening to monday", "2026-03-06 18:50", 30 * time.Minute, "2026-03-09 07:20"},
		{"saturday", "2026-03-07 12:00", 15 * time.Minute, "2026-03-09 07:15"},
		{"more than a day of window time", "2026-03-02 09:00", 13 * time.Hour, "2026-03-03 10:00"},
		{"ascension day (thursday) skipped", "2026-05-13 18:55", 15 * time.Minute, "2026-05-15 07:10"},
		{"europe day on a saturday, whit monday", "2026-05-22 18:59", 15 * time.Minute, "2026-05-26 07:14"},
		{"national day (tuesday)", "2026-06-22 18:59", 15 * time.Minute, "2026-06-24 07:14"},
		{"easter monday", "2026-04-03 18:50", 15 * time.Minute, "2026-04-07 07:05"},
		{"christmas and st stephen", "2026-12-24 18:50", 30 * time.Minute, "2026-12-28 07:20"},
		{"new year", "2026-12-31 18:59", 15 * time.Minute, "2027-01-04 07:14"},
		{"spring DST weekend", "2026-03-27 18:50", 15 * time.Minute, "2026-03-30 07:05"},
		{"autumn DST weekend", "2026-10-23 18:50", 15 * time.Minute, "2026-10-26 07:05"},
	} {
		at, want := lux(t, c.at), lux(t, c.want)
		got := w.Add(at, c.d)
		if !got.Equal(want) {
			t.Errorf("%s: Add(%s, %s) = %s, want %s", c.name, c.at, c.d, got.In(w.Location), want)
		}
		if back := w.Between(at, got); back != c.d {
			t.Errorf("%s: Between(%s, %s) = %s, want %s", c.name, c.at, got.In(w.Location), back, c.d)
		}
	}
	// Across the spring change the wall clock gains an hour: 60 h 15 min of wall time minus one hour.
	a, b := lux(t, "2026-03-27 18:50"), lux(t, "2026-03-30 07:05")
	if b.Sub(a) != 59*time.Hour+15*time.Minute {
		t.Fatalf("real time across the DST change: %s", b.Sub(a))
	}
	if _, off := b.Zone(); off != 2*3600 {
		t.Fatalf("30 March 2026 in Luxembourg is CEST, got offset %d", off)
	}
}

func TestBetween(t *testing.T) {
	w := DefaultWindow()
	for _, c := range []struct {
		a, b string
		want time.Duration
	}{
		{"2026-03-02 10:00", "2026-03-02 09:00", 0},
		{"2026-03-07 08:00", "2026-03-08 20:00", 0},                   // a weekend
		{"2026-03-06 18:00", "2026-03-09 08:00", 2 * time.Hour},       // Fri 1 h + Mon 1 h
		{"2026-03-02 00:00", "2026-03-09 00:00", 5 * 12 * time.Hour},  // a whole week
		{"2026-05-11 00:00", "2026-05-18 00:00", 4 * 12 * time.Hour},  // Ascension week
		{"2026-03-23 00:00", "2026-04-06 00:00", 10 * 12 * time.Hour}, // two weeks over the DST change
		{"2026-12-21 00:00", "2027-01-04 00:00", 8 * 12 * time.Hour},  // Christmas, St Stephen, New Year
		{"2026-03-02 06:59", "2026-03-02 07:01", 1 * time.Minute},     // opening
		{"2026-03-02 18:59", "2026-03-02 19:01", 1 * time.Minute},     // closing
	} {
		if got := w.Between(lux(t, c.a), lux(t, c.b)); got != c.want {
			t.Errorf("Between(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}

// TestWindowOverTheDSTNight: a window open on the night of the change counts real time, not wall time.
func TestWindowOverTheDSTNight(t *testing.T) {
	w := DefaultWindow()
	w.Days = []time.Weekday{time.Sunday}
	w.Open, w.Close = time.Hour, 4*time.Hour
	w.Luxembourg = false
	// 29 March 2026: 02:00 CET becomes 03:00 CEST, so 01:00-04:00 is two hours long.
	if got := w.Between(lux(t, "2026-03-29 00:00"), lux(t, "2026-03-30 00:00")); got != 2*time.Hour {
		t.Fatalf("spring night: %s", got)
	}
	// 25 October 2026: 03:00 CEST becomes 02:00 CET, so 01:00-04:00 is four hours long.
	if got := w.Between(lux(t, "2026-10-25 00:00"), lux(t, "2026-10-26 00:00")); got != 4*time.Hour {
		t.Fatalf("autumn night: %s", got)
	}
	if got := w.Add(lux(t, "2026-03-29 00:30"), 90*time.Minute); !got.Equal(lux(t, "2026-03-29 03:30")) {
		t.Fatalf("spring night due: %s", got.In(w.Location))
	}
}

func TestExtraHolidaysAndNoComputedOnes(t *testing.T) {
	w := DefaultWindow()
	d, err := ParseDate("2026-12-24")
	if err != nil {
		t.Fatal(err)
	}
	w.Extra = []Date{d}
	if got := w.Add(lux(t, "2026-12-23 18:50"), 15*time.Minute); !got.Equal(lux(t, "2026-12-28 07:05")) {
		t.Fatalf("with 24 December closed: %s", got.In(w.Location))
	}
	w.Extra, w.Luxembourg = nil, false
	if got := w.Add(lux(t, "2026-06-22 18:59"), 15*time.Minute); !got.Equal(lux(t, "2026-06-23 07:14")) {
		t.Fatalf("without holidays, 23 June is a working day: %s", got.In(w.Location))
	}
	if w.IsOpen(lux(t, "2026-06-23 06:59")) || !w.IsOpen(lux(t, "2026-06-23 07:00")) || w.IsOpen(lux(t, "2026-06-23 19:00")) {
		t.Fatal("IsOpen at the window's edges")
	}
	if _, err := ParseDate("24.12.2026"); err == nil {
		t.Fatal("a malformed date parsed")
	}
	bad := DefaultWindow()
	bad.Close = bad.Open
	if bad.Validate() == nil || DefaultWindow().Validate() != nil {
		t.Fatal("Validate")
	}
}
