package customer

import (
	"context"
	"database/sql"

	"easymail/internal/dkimsign"
)

// DKIM provisions the DKIM keys of the customers' domains and reports the records to publish.
// *dkimsign.Manager implements it.
type DKIM interface {
	// Prepare generates the first key of a new domain. Key generation is slow (RSA), so it runs before the
	// domain's transaction; the returned function stores the key inside it, after the domain's row.
	Prepare(domain string) (func(ctx context.Context, tx *sql.Tx) error, error)
	// Keys returns the keys of the given domains whose records are to be published, by domain, active keys
	// first and RSA before Ed25519.
	Keys(ctx context.Context, domains []string) (map[string][]dkimsign.Key, error)
}

// fillDKIM sets the DKIM records of the domains: DKIMKeys are all the keys to publish, DKIM is the record
// of the first active one (the RSA key), or nil.
func (s *Service) fillDKIM(ctx context.Context, domains []*Domain) error {
	if s.DKIM == nil || len(domains) == 0 {
		return nil
	}
	names := make([]string, len(domains))
	for i, d := range domains {
		names[i] = d.Domain
	}
	// One query for many domains: above a few hundred, reading every key is cheaper than a long IN list.
	var list []string
	if len(names) <= 200 {
		list = names
	}
	keys, err := s.DKIM.Keys(ctx, list)
	if err != nil {
		return err
	}
	for _, d := range domains {
		d.DKIM, d.DKIMKeys = nil, keys[d.Domain]
		for _, k := range d.DKIMKeys {
			if k.State == dkimsign.StateActive {
				r := k.Record
				d.DKIM = &r
				break
			}
		}
	}
	return nil
}

// domainsOf returns pointers to the domains of the customers, for fillDKIM.
func domainsOf(cs ...*Customer) []*Domain {
	var out []*Domain
	for _, c := range cs {
		for i := range c.Domains {
			out = append(out, &c.Domains[i])
		}
	}
	return out
}
