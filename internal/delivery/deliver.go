package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"easymail/internal/resolver"
	"easymail/internal/smtperr"
)

// maxPathLength is the longest reverse- or forward-path (RFC 5321 §4.5.3.1.3), without the angle brackets.
const maxPathLength = 254

// Deliver makes one delivery attempt of j: it routes to the domain's mail exchangers in preference order and
// returns one outcome per recipient. It never returns early without outcomes: a route failure, a local
// problem or the cancellation of ctx gives every recipient a (temporary or permanent) error.
func (d *Deliverer) Deliver(ctx context.Context, j Job) Result {
	res := Result{Started: time.Now(), Rcpts: make([]RcptResult, len(j.Recipients))}
	if j.Source.IP.IsValid() {
		res.LocalIP = j.Source.IP.String()
	}
	for i, rcpt := range j.Recipients {
		res.Rcpts[i].Rcpt = rcpt
		if !validPath(rcpt) || rcpt == "" {
			res.Rcpts[i].Err = smtperr.BadAddress.Wrap(errors.New("invalid recipient " + quote(rcpt)))
		}
	}
	d.deliver(ctx, j, &res)
	res.Duration = time.Since(res.Started)
	return res
}

func (d *Deliverer) deliver(ctx context.Context, j Job, res *Result) {
	if !pending(res.Rcpts) {
		return
	}
	if err := checkJob(j); err != nil {
		setPending(res.Rcpts, err)
		return
	}
	release, err := d.limits.acquire(ctx, j.Domain)
	if err != nil {
		setPending(res.Rcpts, aborted(err))
		return
	}
	defer release()

	hosts, implicit, rerr := d.mxHosts(ctx, j.Domain)
	if rerr != nil {
		setPending(res.Rcpts, rerr)
		return
	}
	// Provider shaping (shaping.go): the destination's provider may be paused or at its limits.
	adm, serr := d.admit(ctx, j, hosts)
	if serr != nil {
		setPending(res.Rcpts, serr)
		return
	}
	defer shaped(adm, res)
	perConn := 0
	if adm != nil {
		perConn = adm.PerConnection
	}
	plan := d.plan(ctx, j)
	res.TLSPolicy = plan.source
	// Each host's addresses are looked up when the hosts before it have failed.
	v4 := j.Source.IP.Unmap().Is4()
	var (
		last             *hostFailure
		tried            int
		seen             = map[netip.Addr]bool{}
		dnsErr, notFound error
	)
	for _, mx := range hosts {
		h, tfail := d.forHost(ctx, j, plan, mx.Host)
		if tfail != nil {
			if ctx.Err() != nil {
				setPending(res.Rcpts, aborted(ctx.Err()))
				return
			}
			res.TLSPolicy, res.TLSVerify = h.source, tfail.tlsResult
			last, tried = tfail, tried+1
			continue
		}
		ips, err := d.hostAddrs(ctx, mx.Host, v4)
		switch {
		case ctx.Err() != nil:
			setPending(res.Rcpts, aborted(ctx.Err()))
			return
		case errors.Is(err, resolver.ErrNotFound):
			notFound = err
			continue
		case err != nil:
			dnsErr = fmt.Errorf("%s: %w", mx.Host, err)
			continue
		}
		for _, ip := range ips {
			if seen[ip] || tried == maxTargets {
				continue
			}
			seen[ip] = true
			tried++
			t := target{host: mx.Host, ip: ip, perConn: perConn}
			res.RemoteMX, res.RemoteIP = t.host, t.ip.String()
			rcpts, info, fail := d.attempt(ctx, j, t, h, res.Rcpts)
			res.TLSPolicy, res.TLSVerify = h.source, info.verify
			if fail == nil {
				res.Rcpts, res.TLS, res.TLSVersion, res.TLSCipher = rcpts, info.desc, info.version, info.cipher
				return
			}
			if ctx.Err() != nil {
				setPending(res.Rcpts, aborted(ctx.Err()))
				return
			}
			last = fail
		}
	}
	if tried == 0 {
		setPending(res.Rcpts, routeFailure(j.Domain, implicit, v4, dnsErr, notFound))
		return
	}
	// When the last host refused with a reply of its own (a 554 greeting, a 421), the recipients' outcome rests
	// on it: it is kept with them.
	fail, remote := allFailed(last), ""
	if last != nil && last.reply {
		remote = last.remote
	}
	for i := range res.Rcpts {
		if res.Rcpts[i].Err == nil {
			res.Rcpts[i].Err, res.Rcpts[i].Reply = fail, remote
		}
	}
}

// checkJob reports a job that cannot be attempted, as the outcome of its recipients.
func checkJob(j Job) *smtperr.Error {
	switch {
	case j.Open == nil:
		return smtperr.LocalError.Wrap(errors.New("job has no content"))
	case !j.Source.IP.IsValid():
		return smtperr.LocalError.Wrap(errors.New("job has no source IP"))
	case !validHELO(j.Source.HELO):
		return smtperr.LocalError.Wrap(errors.New("invalid HELO name " + quote(j.Source.HELO)))
	case j.Domain == "" || !validPath(j.Domain):
		return smtperr.LocalError.Wrap(errors.New("invalid destination domain " + quote(j.Domain)))
	case !validPath(j.Sender):
		// RFC 3463 X.1.7: bad sender's mailbox address syntax.
		return smtperr.New(501, smtperr.PermBadSender, "Bad sender address syntax")
	}
	return nil
}

// validPath reports whether s can go between the angle brackets of MAIL FROM or RCPT TO: no control
// characters (which could inject commands), no angle brackets (which could add parameters), not too long. Its
// finer syntax was checked on ingress.
func validPath(s string) bool {
	if len(s) > maxPathLength {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == '<' || r == '>'
	})
}

// validHELO reports whether s can be sent as the EHLO argument (RFC 5321 §4.1.1.1: a domain or address
// literal).
func validHELO(s string) bool {
	return s != "" && len(s) <= 255 && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r >= 0x7f })
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return "\"" + strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s), "?") + "\""
}

// pending reports whether a recipient has no outcome yet.
func pending(rcpts []RcptResult) bool {
	for _, r := range rcpts {
		if r.Err == nil {
			return true
		}
	}
	return false
}

// setPending gives err to every recipient without an outcome.
func setPending(rcpts []RcptResult, err *smtperr.Error) {
	for i := range rcpts {
		if rcpts[i].Err == nil {
			rcpts[i].Err = err
		}
	}
}
