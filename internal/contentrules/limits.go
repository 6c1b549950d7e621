package contentrules

import (
	"fmt"
	"time"
)

// Budgets (Result.Budget, and the label of easymail_contentrules_budget_exceeded_total).
const (
	BudgetDepth        = "depth"
	BudgetParts        = "parts"
	BudgetEntries      = "archive_entries"
	BudgetDecompressed = "decompressed_bytes"
	BudgetTime         = "time"
)

// Budgets lists every budget, for the metric's label values.
var Budgets = []string{BudgetDepth, BudgetParts, BudgetEntries, BudgetDecompressed, BudgetTime}

// Limits bound the work of the MIME walk on one message: what a hostile message (a zip bomb, a nesting of
// archives, a million parts) can make it do. A message over one of them is not walked further; Check then
// names the budget it exceeded, and the caller decides (the relay refuses it with 552 5.3.4 by default).
// The zero value of a field takes its default (DefaultLimits).
type Limits struct {
	// MaxDepth bounds the nesting of multiparts, attached messages and archives. Default: 16.
	MaxDepth int
	// MaxParts bounds the MIME parts of one message (attached messages' parts included). Default: 1000.
	MaxParts int
	// MaxArchiveEntries bounds the files and directories listed in the archives of one message, all
	// archives together. Default: 10000.
	MaxArchiveEntries int
	// MaxDecompressedBytes bounds the bytes inflated from archives for one message: an archive inside an
	// archive must be decompressed to be opened. Checked against each entry's declared size before it is
	// inflated, so no more than this is ever decompressed. Default: 64 MiB.
	MaxDecompressedBytes int64
	// MaxTime bounds the time the walk takes on one message. Default: 5s.
	MaxTime time.Duration
	// ScratchDir is where archives over 256 KiB are kept while they are opened (the attachment decoded
	// from base64, an archive inflated from another), in files removed as soon as they are created. Default:
	// the system's temporary directory. The relay uses its spool directory.
	ScratchDir string
	// NoArchives skips archives: their files are not listed (the quarantine's preview needs none of them).
	NoArchives bool

	// now is the clock (nil: time.Now); tests in this package set it.
	now func() time.Time
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxDepth: 16, MaxParts: 1000, MaxArchiveEntries: 10000, MaxDecompressedBytes: 64 << 20, MaxTime: 5 * time.Second}
}

// withDefaults fills the zero fields of l.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxArchiveEntries <= 0 {
		l.MaxArchiveEntries = d.MaxArchiveEntries
	}
	if l.MaxDecompressedBytes <= 0 {
		l.MaxDecompressedBytes = d.MaxDecompressedBytes
	}
	if l.MaxTime <= 0 {
		l.MaxTime = d.MaxTime
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Describe says in a few words what exceeding budget means, for the reply and the log.
func (l Limits) Describe(budget string) string {
	l = l.withDefaults()
	switch budget {
	case BudgetDepth:
		return fmt.Sprintf("parts or archives nested more than %d deep", l.MaxDepth)
	case BudgetParts:
		return fmt.Sprintf("more than %d MIME parts", l.MaxParts)
	case BudgetEntries:
		return fmt.Sprintf("more than %d files in archives", l.MaxArchiveEntries)
	case BudgetDecompressed:
		return fmt.Sprintf("archives that decompress to more than %d bytes", l.MaxDecompressedBytes)
	case BudgetTime:
		return fmt.Sprintf("more than %s of work", l.MaxTime)
	}
	return budget
}

// Stats are what the walk did on one message.
type Stats struct {
	// Parts are the MIME parts visited, Entries the archive entries listed, Archives the archives opened.
	Parts, Entries, Archives int
	// Decompressed is the bytes inflated from archives.
	Decompressed int64
	// Depth is the deepest nesting reached.
	Depth int
}
