package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"easymail/internal/dane"
	"easymail/internal/mtasts"
	"easymail/internal/resolver"
	"easymail/internal/smtperr"
)

// TLSPolicy is what a delivery requires of TLS (delivery.tls_policy, per destination and per customer).
type TLSPolicy int

// The TLS policies, from the weakest.
const (
	// TLSMay is opportunistic STARTTLS (RFC 7435): used when offered, the certificate not checked, plain text
	// when it is not offered or its handshake fails.
	TLSMay TLSPolicy = iota
	// TLSEncrypt requires STARTTLS, with any certificate.
	TLSEncrypt
	// TLSVerify requires STARTTLS with a certificate that verifies (WebPKI) for the MX host name.
	TLSVerify
)

// String returns may, encrypt or verify.
func (p TLSPolicy) String() string {
	switch p {
	case TLSEncrypt:
		return "encrypt"
	case TLSVerify:
		return "verify"
	}
	return "may"
}

// ParseTLSPolicy reads may, encrypt or verify.
func ParseTLSPolicy(s string) (TLSPolicy, error) {
	switch s {
	case "may":
		return TLSMay, nil
	case "encrypt":
		return TLSEncrypt, nil
	case "verify":
		return TLSVerify, nil
	}
	return TLSMay, fmt.Errorf("%q is not a TLS policy (may, encrypt or verify)", s)
}

// The sources of the TLS requirement of an attempt (Result.TLSPolicy).
const (
	PolicyNone        = "none"
	PolicyCustomer    = "customer"
	PolicyDestination = "destination"
	PolicyMTASTS      = "mta-sts"
	PolicyDANE        = "dane"
)

// The verification results of an attempt (Result.TLSVerify) besides the TLS-RPT result types of failures
// (RFC 8460 §4.3: starttls-not-supported, certificate-host-mismatch, certificate-expired,
// certificate-not-trusted, validation-failure, ...).
const (
	VerifyNone       = "none"       // plain text
	VerifyUnverified = "unverified" // encrypted, the certificate not checked
	VerifyVerified   = "verified"   // WebPKI, for the MX host name
	VerifyDANE       = "dane"       // matched a TLSA record
)

// STSPolicies gives destinations' MTA-STS policies; *mtasts.Cache implements it.
type STSPolicies interface {
	Policy(ctx context.Context, domain string) (*mtasts.Policy, error)
}

// TLSSession is one session's outcome for TLS reporting (RFC 8460): under which policy, with which MX host
// and address, and its result ("" for a success, else a TLS-RPT result type).
type TLSSession struct {
	Domain      string
	PolicyType  string   // sts or tlsa
	Policy      []string // the policy-string: the MTA-STS policy's lines, or the TLSA records
	MXHost      string
	SendingIP   string
	ReceivingIP string
	Result      string
}

// TLSReporter counts sessions for TLS-RPT.
type TLSReporter interface {
	ReportTLS(s TLSSession)
}

// tlsPlan is the TLS requirement of one delivery before the MX hosts are known: the configured and the
// customer's policy, and the destination's MTA-STS policy.
type tlsPlan struct {
	level  TLSPolicy
	source string
	sts    *mtasts.Policy // nil: none
}

// hostTLS is the requirement for one MX host.
type hostTLS struct {
	level  TLSPolicy
	source string
	tlsa   []resolver.TLSA // DANE: the usable, validated records; level is TLSVerify
	// report says where sessions with the host are reported (TLS-RPT), nil for nowhere; testing is set when
	// an MTA-STS policy in testing mode asks for a report only: its failures do not stop delivery.
	report  *TLSSession
	testing bool
}

// plan works out the requirement of j: the strictest of the configured default, the destination's and the
// customer's policy, then the destination's MTA-STS policy in enforce mode. A policy that cannot be fetched
// is reported and delivery goes on without it (RFC 8461 §3.3).
func (d *Deliverer) plan(ctx context.Context, j Job) tlsPlan {
	p := tlsPlan{level: d.tlsDefault, source: PolicyNone}
	if p.level > TLSMay {
		p.source = PolicyDestination
	}
	if l, ok := d.tlsPolicies[j.Domain]; ok && l > p.level {
		p.level, p.source = l, PolicyDestination
	}
	if j.TLSPolicy != "" { // "": the customer has no policy of its own
		if l, err := ParseTLSPolicy(j.TLSPolicy); err == nil && l > p.level {
			p.level, p.source = l, PolicyCustomer
		}
	}
	if d.sts == nil {
		return p
	}
	sts, err := d.sts.Policy(ctx, j.Domain)
	var fe *mtasts.FetchError
	if errors.As(err, &fe) && d.reporter != nil {
		d.reporter.ReportTLS(TLSSession{Domain: j.Domain, PolicyType: "sts", SendingIP: j.Source.IP.String(), Result: fe.Result})
	}
	p.sts = sts
	return p
}

// forHost works out the requirement for host: DANE when the host has usable, DNSSEC-validated TLSA records
// (it takes precedence over MTA-STS, RFC 8461 §2), else the MTA-STS policy (enforce: the host must match
// it and verify; testing: the same is checked and reported only), else the plan's. A host that must not be
// used gives a failure.
func (d *Deliverer) forHost(ctx context.Context, j Job, p tlsPlan, host string) (hostTLS, *hostFailure) {
	h := hostTLS{level: p.level, source: p.source}
	if d.tlsa != nil {
		recs, secure, err := d.tlsa.LookupTLSA(ctx, "_25._tcp."+host)
		switch {
		case errors.Is(err, resolver.ErrNotFound) || (err == nil && !secure):
		case err != nil:
			// RFC 7672 §2.2: the TLSA records of the host cannot be had; it may have some, so it is not used.
			return h, &hostFailure{err: smtperr.New(451, smtperr.TempCrypto,
				"DANE: TLSA lookup for %s failed", host).Wrap(err), tlsResult: "tlsa-invalid", reached: true}
		default:
			if usable := dane.Usable(recs); len(usable) > 0 {
				h.level, h.source, h.tlsa = TLSVerify, PolicyDANE, usable
				h.report = &TLSSession{Domain: j.Domain, PolicyType: "tlsa", Policy: tlsaStrings(usable), MXHost: host}
				return h, nil
			}
		}
	}
	if p.sts == nil {
		return h, nil
	}
	h.report = &TLSSession{Domain: j.Domain, PolicyType: "sts", Policy: p.sts.Lines(), MXHost: host}
	if p.sts.Mode == mtasts.ModeTesting {
		h.testing = true
		if !p.sts.Matches(host) {
			// Reported once here; the session itself is then not reported.
			d.reportTLS(h, j, "", "validation-failure")
			h.report = nil
		}
		return h, nil
	}
	h.level, h.source = TLSVerify, PolicyMTASTS
	if !p.sts.Matches(host) {
		d.reportTLS(h, j, "", "validation-failure")
		return h, &hostFailure{err: smtperr.New(451, smtperr.TempCrypto,
			"MTA-STS policy of %s does not list MX host %s", j.Domain, host), tlsResult: "validation-failure", reached: true}
	}
	return h, nil
}

// reportTLS counts one session with the host of h for TLS-RPT.
func (d *Deliverer) reportTLS(h hostTLS, j Job, ip, result string) {
	if d.reporter == nil || h.report == nil {
		return
	}
	s := *h.report
	s.SendingIP, s.ReceivingIP, s.Result = j.Source.IP.String(), ip, result
	d.reporter.ReportTLS(s)
}

// tlsaStrings writes TLSA records as in a zone file ("3 1 1 ABCD..."), for TLS-RPT's policy-string.
func tlsaStrings(recs []resolver.TLSA) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, strings.ToUpper(hex.EncodeToString(r.Data)))
	}
	return out
}

// tlsClientConfig returns the handshake configuration. Certificates are never checked by crypto/tls itself:
// opportunistic STARTTLS (RFC 7435) must take any, since MX certificates are often self-signed or issued for
// another name and refusing them would only make us send in plain text; verifyPeer checks them after the
// handshake, before anything of the message is sent, as the policy requires.
func tlsClientConfig(host string) *tls.Config {
	return &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: true, // checked by verifyPeer when the policy asks, see above
		MinVersion:         tls.VersionTLS12,
	}
}

// verifyPeer checks the certificate chain of st for host as h requires. It returns the verification result
// (verified, dane, unverified, or a TLS-RPT result type) and, for a failure, the error.
func (d *Deliverer) verifyPeer(st *tls.ConnectionState, host string, h hostTLS) (string, error) {
	switch {
	case h.tlsa != nil:
		if err := dane.Verify(h.tlsa, st.PeerCertificates, host, time.Now()); err != nil {
			var de *dane.Error
			if errors.As(err, &de) {
				return de.Result, err
			}
			return "validation-failure", err
		}
		return VerifyDANE, nil
	case h.level < TLSVerify && !h.testing:
		return VerifyUnverified, nil
	}
	if len(st.PeerCertificates) == 0 {
		return "validation-failure", errors.New("the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: d.roots, Intermediates: inter, DNSName: host})
	if err == nil {
		return VerifyVerified, nil
	}
	return certResult(err), err
}

// certResult is the TLS-RPT result type (RFC 8460 §4.3.2.2) of a WebPKI verification error.
func certResult(err error) string {
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &hn):
		return "certificate-host-mismatch"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "certificate-expired"
	case errors.As(err, &ua):
		return "certificate-not-trusted"
	}
	return "validation-failure"
}

// tlsRequired is the outcome when a policy requires TLS that host does not give (RFC 3463 X.7.10:
// encryption needed; X.7.5: cryptographic failure). It is temporary: the host may be fixed, another tried.
func tlsRequired(host string, h hostTLS, result string, cause error) *hostFailure {
	enh := smtperr.TempCrypto
	what := "TLS with a verified certificate"
	switch {
	case result == "starttls-not-supported":
		enh = [3]int{4, 7, 10}
	case h.level == TLSEncrypt:
		what = "TLS"
	}
	if h.source == PolicyDANE {
		what = "TLS matching its TLSA records"
	}
	e := smtperr.New(451, enh, "TLS policy (%s: %s) requires %s; %s: %s", h.source, h.level, what, host, result)
	if cause != nil {
		e = e.Wrap(cause)
	}
	// reached: the outcome is this reason, not "no host could be reached".
	return &hostFailure{err: e, tlsResult: result, reached: true}
}
