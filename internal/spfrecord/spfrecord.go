// Package spfrecord builds the operator's SPF records (RFC 7208): the TXT records published at
// _spf.<operator domain> that authorise every outbound IP of every pool, so that a customer's domain
// authorises them all with one "include:_spf.<operator domain>".
//
// ip4 and ip6 mechanisms cost no DNS lookup (RFC 7208 §4.6.4); each include does. When the mechanisms do
// not fit in one record, they are spread over several records chained with include (the first includes the
// second, and so on), each record short enough for a DNS answer over UDP, and split into character-strings
// of at most 255 octets (RFC 1035 §3.3.14, RFC 7208 §3.3).
package spfrecord

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// MaxRecordLen is the longest record value built: RFC 7208 §3.4 advises keeping an SPF answer within 512
// octets, that is about 450 octets of record.
const MaxRecordLen = 450

// MaxLookups is the most includes the chain may hold. RFC 7208 §4.6.4 allows 10 DNS-querying terms in
// one evaluation; the customer's include of the first record costs one, and the customer's own record
// needs a few (mx, a): 5 leaves them room.
const MaxLookups = 5

// stringLen is the longest TXT character-string (RFC 1035 §3.3.14).
const stringLen = 255

// Build returns the records to publish for domain (e.g. "_spf.example.net") authorising ips: records[0] at
// domain, records[i] at "s<i>." + domain, and the number of DNS lookups that evaluating domain costs.
// Duplicate addresses are dropped; adjacent ones are not merged.
func Build(domain string, ips []netip.Addr) ([]DNSRecord, int, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return nil, 0, fmt.Errorf("spf: no domain")
	}
	if len(ips) == 0 {
		return nil, 0, fmt.Errorf("spf: no outbound IP")
	}
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, ip.Unmap())
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	addrs = slices.Compact(addrs)
	mechs := make([]string, len(addrs))
	for i, a := range addrs {
		if a.Is4() {
			mechs[i] = "ip4:" + a.String()
		} else {
			mechs[i] = "ip6:" + a.String()
		}
	}
	name := func(i int) string {
		if i == 0 {
			return domain
		}
		return "s" + strconv.Itoa(i) + "." + domain
	}
	var records []DNSRecord
	for i := 0; len(mechs) > 0; i++ {
		// The tail every record but the last carries: " include:<next> ~all"; the last: " ~all".
		next := " include:" + name(i+1) + " ~all"
		value := "v=spf1"
		n := 0
		for n < len(mechs) {
			tail := next
			if n == len(mechs)-1 {
				tail = " ~all"
			}
			if len(value)+1+len(mechs[n])+len(tail) > MaxRecordLen {
				break
			}
			value += " " + mechs[n]
			n++
		}
		if n == 0 {
			return nil, 0, fmt.Errorf("spf: %s does not fit in a record", mechs[0])
		}
		mechs = mechs[n:]
		if len(mechs) > 0 {
			value += next
		} else {
			value += " ~all"
		}
		records = append(records, DNSRecord{Name: name(i), Type: "TXT", Value: value, Strings: split(value)})
	}
	lookups := len(records) - 1
	if lookups > MaxLookups {
		return nil, 0, fmt.Errorf("spf: %d outbound IPs need %d chained records (%d lookups, at most %d): "+
			"publish CIDR ranges instead", len(addrs), len(records), lookups, MaxLookups)
	}
	return records, lookups, nil
}

// split cuts a record value into character-strings of at most 255 octets, at spaces where possible. SPF
// concatenates the strings without adding anything (RFC 7208 §3.3), so a cut keeps the space at the end of
// a string.
func split(v string) []string {
	var out []string
	for len(v) > stringLen {
		cut := strings.LastIndexByte(v[:stringLen], ' ')
		if cut <= 0 {
			cut = stringLen - 1
		}
		out = append(out, v[:cut+1])
		v = v[cut+1:]
	}
	return append(out, v)
}

// Zone renders records as zone-file lines, each TXT value as quoted character-strings.
func Zone(records []DNSRecord) string {
	var b strings.Builder
	for _, r := range records {
		b.WriteString(r.Name + ". IN TXT")
		for _, s := range r.Strings {
			b.WriteString(" \"" + s + "\"")
		}
		b.WriteString("\n")
	}
	return b.String()
}
