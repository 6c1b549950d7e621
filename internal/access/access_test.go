package access

import (
	"testing"
	"time"
)

// TestMaySend: deactivated and removed customers are refused; a terminating one until its date only.
func TestMaySend(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		status string
		at     time.Time
		want   bool
	}{
		{StatusPending, time.Time{}, true},
		{StatusActive, time.Time{}, true},
		{StatusTerminating, now.Add(time.Hour), true},
		{StatusTerminating, now.Add(-time.Second), false},
		{StatusTerminating, time.Time{}, true},
		{StatusDeactivated, time.Time{}, false},
		{StatusRemoved, time.Time{}, false},
	} {
		cu := &Customer{Status: c.status, DeactivateAt: c.at}
		if got := cu.MaySend(); got != c.want {
			t.Errorf("%s (deactivate at %v): MaySend %v, want %v", c.status, c.at, got, c.want)
		}
	}
}
