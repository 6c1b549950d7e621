package node

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"easymail/internal/config"
	"easymail/internal/delivery"
	"easymail/internal/mtasts"
	"easymail/internal/queue"
	"easymail/internal/resolver"
	"easymail/internal/store"
	"easymail/internal/tlsrpt"
)

// outboundTLS is the TLS of delivery built from the configuration (docs/delivery.md): the options it gives
// delivery and the TLS-RPT reporter, run by run.
type outboundTLS struct {
	reporter *tlsrpt.Reporter // nil when tls_rpt is off
}

// newOutboundTLS fills the TLS options of o: policies, roots, MTA-STS, DANE (dns.trust_ad) and TLS-RPT,
// whose mailed reports are queued through mailer; hooks may replace the policy fetches' dialer and the
// reports' clock (tests).
func newOutboundTLS(cfg config.Config, db *store.DB, res *resolver.DNS, mailer tlsrpt.Mailer, log *slog.Logger,
	hooks Hooks, o *delivery.Options) (*outboundTLS, error) {
	t := cfg.Delivery.DeliveryTLS
	var err error
	if o.TLSPolicy, err = delivery.ParseTLSPolicy(t.TLSPolicy); err != nil {
		return nil, fmt.Errorf("delivery.tls_policy: %w", err)
	}
	o.TLSPolicies = map[string]delivery.TLSPolicy{}
	for d, p := range t.TLSPolicies {
		if o.TLSPolicies[d], err = delivery.ParseTLSPolicy(p); err != nil {
			return nil, fmt.Errorf("delivery.tls_policies.%s: %w", d, err)
		}
	}
	if t.TLSCAFile != "" {
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.Path(t.TLSCAFile))
		if err != nil {
			return nil, fmt.Errorf("delivery.tls_ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("delivery.tls_ca_file: no certificate in %s", t.TLSCAFile)
		}
		o.RootCAs = roots
	}
	if t.MTASTS.Enabled {
		o.MTASTS = mtasts.New(mtasts.Options{DB: db, Resolver: res, RootCAs: o.RootCAs,
			FetchTimeout: t.MTASTS.FetchTimeout, Refresh: t.MTASTS.Refresh, Dial: hooks.MTASTSDial, Logger: log})
	}
	if cfg.DNS.TrustAD {
		o.TLSA = res
	}
	out := &outboundTLS{}
	if t.TLSRPT.Enabled {
		org, contact := t.TLSRPT.Organization, t.TLSRPT.Contact
		if org == "" {
			org = cfg.Hostname
		}
		if contact == "" {
			contact = "postmaster@" + cfg.Hostname
		}
		out.reporter = tlsrpt.New(tlsrpt.Options{DB: db, Resolver: res, Mailer: mailer,
			Organization: org, Contact: contact, Submitter: cfg.Hostname,
			Interval: t.TLSRPT.Interval, Now: hooks.TLSRPTNow, Logger: log})
		o.Reporter = out.reporter
	}
	return out, nil
}

// reports is the TLS-RPT reporter (nil when tls_rpt is off): it sends the daily reports until ctx ends, then
// flushes the last counts.
func (t *outboundTLS) reports() Component {
	if t.reporter == nil {
		return nil
	}
	return untilDone(t.reporter.Run)
}

// submitRaw is a tlsrpt.Mailer queueing through the queue that get returns (built after the deliverer).
type submitRaw func() *queue.Queue

func (f submitRaw) SubmitRaw(ctx context.Context, from, to string, msg []byte) (string, error) {
	return f().SubmitRaw(ctx, from, to, msg)
}
