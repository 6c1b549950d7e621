package contentrules

import (
	"bytes"
	"os"
	"runtime"
	"testing"
	"time"

	"easymail/internal/contentrules/contentrulestest"
)

var exeRule = []Rule{{Name: "exe", Type: TypeExtension, Values: []string{"exe"}, Action: "reject", Reason: "Executable"}}

// checkWith runs the exe rule on msg within lim, reading msg through a counter, and checks that the whole
// message was read at most once and that the scratch directory is left empty.
func checkWith(t *testing.T, msg []byte, lim Limits) Result {
	t.Helper()
	s, err := Compile(exeRule, "rules")
	if err != nil {
		t.Fatal(err)
	}
	if lim.ScratchDir == "" {
		lim.ScratchDir = t.TempDir()
	}
	cr := &contentrulestest.CountingReader{R: bytes.NewReader(msg)}
	res := s.Check(cr, int64(len(msg)), lim)
	if res.Err != nil {
		t.Fatalf("check failed: %v", res.Err)
	}
	if cr.N > int64(len(msg)) {
		t.Fatalf("read %d bytes of a %d-byte message", cr.N, len(msg))
	}
	if left, _ := os.ReadDir(lim.ScratchDir); len(left) != 0 {
		t.Fatalf("scratch files left behind: %v", left)
	}
	return res
}

// TestZipBombIsStoppedByTheDecompressedBudget: a zip nested three levels (16 × 16 archives of 4 MiB each,
// 1 GiB inflated in all, from an attachment of a few kilobytes) is walked until the decompressed budget
// and no further: never more than the budget is inflated, nor allocated.
func TestZipBombIsStoppedByTheDecompressedBudget(t *testing.T) {
	bomb := contentrulestest.ZipBomb(3, 16, 4<<20)
	msg := contentrulestest.Message("a@acme.test", "bomb.zip", bomb)
	t.Logf("message of %d bytes, archive of %d bytes", len(msg), len(bomb))
	const budget = 16 << 20
	var res Result
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res = checkWith(t, msg, Limits{MaxDecompressedBytes: budget})
	runtime.ReadMemStats(&after)
	if res.Budget != BudgetDecompressed {
		t.Fatalf("budget %q, want %s (stats %+v)", res.Budget, BudgetDecompressed, res.Stats)
	}
	if res.Stats.Decompressed > budget || res.Stats.Decompressed < budget/2 {
		t.Fatalf("inflated %d bytes with a budget of %d", res.Stats.Decompressed, budget)
	}
	// The inflated archives go to scratch files, not to memory.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("inflated %d bytes (budget %d), allocated %d bytes", res.Stats.Decompressed, budget, alloc)
	if alloc > budget/4 {
		t.Fatalf("%d bytes allocated to walk the bomb", alloc)
	}
	// With the default budget (64 MiB), too.
	if res := checkWith(t, msg, Limits{}); res.Budget != BudgetDecompressed || res.Stats.Decompressed > DefaultLimits().MaxDecompressedBytes {
		t.Fatalf("default budget: %q %+v", res.Budget, res.Stats)
	}
	// A harmless nested archive within the budget is walked whole: an executable deep inside is found.
	ok := contentrulestest.Message("a@acme.test", "docs.zip", contentrulestest.Nested(4, "tools/setup.exe", false))
	if res := checkWith(t, ok, Limits{}); res.Budget != "" || len(res.Hits) != 1 || res.Hits[0].Where != "docs.zip/level02.zip/level03.zip/level04.zip: tools/setup.exe" {
		t.Fatalf("nested archive: %+v", res)
	}
}

// TestArchiveEntriesBudget: archives with more entries than the budget stop the walk, whether the count is
// reached entry by entry or the central directory is too large to be parsed at all.
func TestArchiveEntriesBudget(t *testing.T) {
	for _, c := range []struct {
		entries, limit int
	}{{150, 100}, {5000, 10}, {10001, 0}} {
		msg := contentrulestest.Message("a@acme.test", "many.zip", contentrulestest.ManyEntries(c.entries))
		res := checkWith(t, msg, Limits{MaxArchiveEntries: c.limit})
		limit := Limits{MaxArchiveEntries: c.limit}.withDefaults().MaxArchiveEntries
		if res.Budget != BudgetEntries || res.Stats.Entries > limit+1 {
			t.Errorf("%d entries, limit %d: budget %q, stats %+v", c.entries, limit, res.Budget, res.Stats)
		}
	}
	// At the limit: walked.
	msg := contentrulestest.Message("a@acme.test", "many.zip", contentrulestest.ManyEntries(100))
	if res := checkWith(t, msg, Limits{MaxArchiveEntries: 100}); res.Budget != "" || res.Stats.Entries != 100 {
		t.Errorf("100 entries, limit 100: %+v", res)
	}
}

// TestDepthBudget: archives or multiparts nested deeper than the limit stop the walk (an executable hidden
// below the limit would otherwise go unseen); at the limit they are walked.
func TestDepthBudget(t *testing.T) {
	lim := DefaultLimits().MaxDepth
	for _, store := range []bool{true, false} {
		// The message is depth 0, its attachment 1, the outer archive 2: lim-1 archives reach lim.
		at := contentrulestest.Message("a@acme.test", "deep.zip", contentrulestest.Nested(lim-1, "run.exe", store))
		if res := checkWith(t, at, Limits{}); res.Budget != "" || len(res.Hits) != 1 || res.Stats.Depth != lim {
			t.Errorf("store=%v, at the limit: %+v", store, res)
		}
		over := contentrulestest.Message("a@acme.test", "deep.zip", contentrulestest.Nested(lim+4, "run.exe", store))
		if res := checkWith(t, over, Limits{}); res.Budget != BudgetDepth || len(res.Hits) != 0 || res.Stats.Depth > lim {
			t.Errorf("store=%v, over the limit: %+v", store, res)
		}
	}
	if res := checkWith(t, contentrulestest.NestedMultipart("a@acme.test", lim, "run.exe"), Limits{}); res.Budget != "" || len(res.Hits) != 1 {
		t.Errorf("multiparts at the limit: %+v", res)
	}
	if res := checkWith(t, contentrulestest.NestedMultipart("a@acme.test", lim+1, "run.exe"), Limits{}); res.Budget != BudgetDepth {
		t.Errorf("multiparts over the limit: %+v", res)
	}
}

func TestPartsBudget(t *testing.T) {
	// The message itself is a part: 1 + 999 parts is the limit of 1000.
	if res := checkWith(t, contentrulestest.ManyParts("a@acme.test", 999), Limits{}); res.Budget != "" || res.Stats.Parts != 1000 {
		t.Errorf("at the limit: %+v", res)
	}
	if res := checkWith(t, contentrulestest.ManyParts("a@acme.test", 1000), Limits{}); res.Budget != BudgetParts {
		t.Errorf("over the limit: %+v", res)
	}
}

// stepClock is a clock that advances by step at every reading.
type stepClock struct {
	t    time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

// TestTimeBudget: a walk that takes longer than the time budget stops (the clock is a fake one that moves
// one second at every reading, so nothing here depends on the machine's speed).
func TestTimeBudget(t *testing.T) {
	msg := contentrulestest.ManyParts("a@acme.test", 100)
	clock := &stepClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), step: time.Second}
	res := checkWith(t, msg, Limits{MaxTime: 10 * time.Second, now: clock.now})
	if res.Budget != BudgetTime || res.Stats.Parts > 10 {
		t.Fatalf("budget %q, stats %+v", res.Budget, res.Stats)
	}
	clock.step = time.Millisecond
	if res := checkWith(t, msg, Limits{MaxTime: 10 * time.Second, now: clock.now}); res.Budget != "" {
		t.Fatalf("within the time budget: %+v", res)
	}
}

// TestScratchFailureIsAnError: an archive that cannot be spilled to the scratch directory is a local
// failure (the caller answers 451), never an archive silently not looked into.
func TestScratchFailureIsAnError(t *testing.T) {
	s, _ := Compile(exeRule, "rules")
	small := contentrulestest.Message("a@acme.test", "small.zip", contentrulestest.Nested(2, "run.exe", true))
	// An archive over the memory threshold: a padding entry of 512 KiB stored.
	msg := contentrulestest.Message("a@acme.test", "big.zip", contentrulestest.ZipBomb(1, 1, 512<<10))
	res := s.Check(bytes.NewReader(msg), int64(len(msg)), Limits{ScratchDir: "/nonexistent/scratch"})
	if res.Err == nil {
		t.Fatalf("no error with an unusable scratch directory: %+v", res)
	}
	// A small archive stays in memory and needs no scratch file.
	if res := s.Check(bytes.NewReader(small), int64(len(small)), Limits{ScratchDir: "/nonexistent/scratch"}); res.Err != nil || len(res.Hits) != 1 {
		t.Fatalf("small archive: %+v", res)
	}
}
