package dkimsign

import (
	"encoding/json"
	"strings"
)

// maxTXTString is the longest character-string of a TXT record (RFC 1035 §3.3.14): longer values are split
// into several strings, which receivers join (RFC 6376 §3.6.2.2).
const maxTXTString = 255

// Strings returns the record's value split into TXT character-strings of at most 255 bytes.
func (r Record) Strings() []string {
	v := r.Value
	var out []string
	for len(v) > maxTXTString {
		out = append(out, v[:maxTXTString])
		v = v[maxTXTString:]
	}
	return append(out, v)
}

// Zone returns the record as a zone file line (RFC 1035 §5.1), ready to paste: the absolute owner name, and
// the value in quoted strings of at most 255 bytes, in parentheses when there are several.
func (r Record) Zone() string {
	parts := r.Strings()
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	name := strings.TrimSuffix(r.Name, ".") + "."
	typ := r.Type
	if typ == "" {
		typ = "TXT"
	}
	if len(quoted) == 1 {
		return name + " IN " + typ + " " + quoted[0]
	}
	return name + " IN " + typ + " ( " + strings.Join(quoted, " ") + " )"
}

// MarshalJSON writes the record with its zone file form besides its value, so that the JSON carries both:
// "value" on one line, "zone" ready for a zone file.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	return json.Marshal(struct {
		plain
		Zone string `json:"zone"`
	}{plain(r), r.Zone()})
}
