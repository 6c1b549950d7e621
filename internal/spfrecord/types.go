package spfrecord

// Records is the answer of GET /dns/spf: the TXT records to publish for the operator's SPF domain.
// Records[0] is at Name (_spf.<operator domain>); the others at the names it includes.
type Records struct {
	Name    string      `json:"name"`
	Include string      `json:"include"`
	Records []DNSRecord `json:"records"`
	// Lookups is the number of DNS lookups (RFC 7208 §4.6.4) that evaluating Name costs.
	Lookups int `json:"lookups"`
}

// DNSRecord is one DNS record to publish. Strings are the character-strings of a TXT record, each at most
// 255 octets (RFC 1035 §3.3.14); Value is their concatenation, as SPF reads it (RFC 7208 §3.3).
type DNSRecord struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Value   string   `json:"value"`
	Strings []string `json:"strings"`
}
