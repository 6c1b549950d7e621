// Package msgid makes the identifiers Easymail hands out: queue ids (time-ordered, so that listings sort by
// arrival and the spool spreads evenly) and opaque random ids for database rows.
package msgid

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

var enc = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// New returns a 20-character queue id: 48 bits of milliseconds since the Unix epoch then 52 random bits, in
// Crockford's base32. Ids sort by creation time to the millisecond.
func New() string {
	var b [13]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	rand.Read(b[6:])
	return enc.EncodeToString(b[:])[:20]
}

// Random returns n random bytes encoded in base32 (lowercase-free, unambiguous), for tokens and row ids.
func Random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return enc.EncodeToString(b)
}
