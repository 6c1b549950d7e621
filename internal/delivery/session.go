package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"easymail/internal/smtperr"
)

// hostFailure says why a host could not take the message, so that the next one is tried.
type hostFailure struct {
	// err is what the recipients get if no other host does better.
	err *smtperr.Error
	// reply is set when err is the remote host's own reply (a refusing greeting, a 421); remote is then
	// that reply as the host wrote it (RcptResult.Reply).
	reply  bool
	remote string
	// reached is set when the session was established (greeting and EHLO went through).
	reached bool
	// tlsResult is the TLS verification result of a failure under a TLS policy (Result.TLSVerify).
	tlsResult string
}

// allFailed is the outcome when every address was tried and failed, last being the last failure. RFC 3463
// X.4.1: no answer from host.
func allFailed(last *hostFailure) *smtperr.Error {
	switch {
	case last == nil:
		return noHostReached(nil)
	case last.reply:
		return smtperr.New(451, smtperr.TempNoAnswer, "No MX host could be reached; last reply: %s", last.err.Message).
			Wrap(last.err)
	case last.reached:
		return last.err
	default:
		return noHostReached(last.err)
	}
}

// tlsInfo is what an attempt's connection was: its TLS and how its certificate was checked.
type tlsInfo struct {
	desc, version, cipher string
	verify                string
}

// info returns the TLS of c.
func (c *client) info() tlsInfo {
	in := tlsInfo{desc: c.tlsDescription(), verify: c.verify}
	if c.tlsState != nil {
		in.version = strings.ReplaceAll(tls.VersionName(c.tlsState.Version), " ", "")
		in.cipher = tls.CipherSuiteName(c.tlsState.CipherSuite)
	}
	return in
}

// attempt delivers to the recipients of rcpts without an outcome yet, through t, as h requires of TLS. On
// success (every such recipient has the host's answer, which may be a refusal) it returns the filled results
// and the connection's TLS; otherwise the host failure.
func (d *Deliverer) attempt(ctx context.Context, j Job, t target, h hostTLS, rcpts []RcptResult) ([]RcptResult, tlsInfo, *hostFailure) {
	// A connection is reused only for a message with the same TLS requirement: one set up opportunistically
	// must not carry a message whose policy wants a verified certificate.
	key := poolKey{remote: t.ip, local: j.Source.IP, helo: j.Source.HELO, tls: h.level.String() + "/" + h.source}
	if c := d.pool.get(key); c != nil {
		c.host = t.host
		c.watch(ctx)
		tx := d.transaction(c, j, rcpts, true)
		d.debug(ctx, j, t, true, c, tx)
		if !tx.stale {
			d.release(key, c, tx.keep && c.reuse(t.perConn))
			return tx.rcpts, c.info(), tx.fail
		}
		// An idle connection the server has dropped meanwhile: dial again, once (below).
		c.close()
		if ctx.Err() != nil {
			return nil, tlsInfo{}, tx.fail
		}
	}

	c, fail, tlsFailed := d.connect(ctx, j, t, true, h)
	if tlsFailed {
		// The TLS handshake failed and the policy allows plain text: the same address again, in plain text.
		d.log.DebugContext(ctx, "delivery: TLS handshake failed, reconnecting without TLS",
			"queue_id", j.QueueID, "mx", t.host, "ip", t.ip.String(), "error", fail.err)
		c, fail, _ = d.connect(ctx, j, t, false, h)
	}
	if fail != nil {
		d.debug(ctx, j, t, false, nil, txResult{fail: fail})
		return nil, tlsInfo{verify: fail.tlsResult}, fail
	}
	tx := d.transaction(c, j, rcpts, false)
	d.debug(ctx, j, t, false, c, tx)
	d.release(key, c, tx.keep && c.reuse(t.perConn))
	return tx.rcpts, c.info(), tx.fail
}

// release keeps c for the next message when keep is set and ctx did not close it, and closes it otherwise.
func (d *Deliverer) release(key poolKey, c *client, keep bool) {
	if c.unwatch() && keep {
		d.pool.put(key, c)
		return
	}
	c.close()
}

// connect opens a session with t from j's source: TCP, greeting, EHLO and, when tryTLS is set and the server
// offers it, STARTTLS, the certificate check h asks for, and EHLO again. tlsFailed reports a failed TLS
// handshake that h allows to retry in plain text (the connection is then closed). Under a policy that
// requires TLS, a host without STARTTLS, a failed handshake or a certificate that does not pass is a host
// failure, never a fallback to plain text.
func (d *Deliverer) connect(ctx context.Context, j Job, t target, tryTLS bool, h hostTLS) (c *client, fail *hostFailure, tlsFailed bool) {
	src := j.Source
	network := "tcp6"
	if t.ip.Is4() {
		network = "tcp4"
	}
	dctx, cancel := context.WithTimeout(ctx, d.connectTimeout)
	raw, err := d.dial(dctx, network, netip.AddrPortFrom(src.IP, 0), netip.AddrPortFrom(t.ip, uint16(d.port)))
	cancel()
	if err != nil {
		return nil, &hostFailure{err: smtperr.New(451, smtperr.TempNoAnswer, "Cannot connect to %s[%s]", t.host, t.ip).
			Wrap(err)}, false
	}
	c = newClient(raw, t.host, d.commandTimeout)
	c.watch(ctx)

	lost := func(stage string, err error, reached bool) (*client, *hostFailure, bool) {
		c.close()
		return nil, &hostFailure{err: connectionError(t.host, stage, err), reached: reached}, false
	}
	refused := func(r reply) (*client, *hostFailure, bool) {
		c.quit(d.pool.quitTimeout)
		return nil, &hostFailure{err: remoteError(t.host, r), reply: true, remote: r.raw}, false
	}

	r, err := c.greet()
	if err != nil {
		return lost("greeting", err, false)
	}
	if r.code != 220 {
		// RFC 5321 §3.1: a 554 (or any refusal) greeting; the client should send QUIT.
		return refused(r)
	}
	if r, err = c.hello(src.HELO); err != nil {
		return lost("EHLO", err, false)
	}
	if r.code/100 != 2 {
		return refused(r)
	}
	// required fails the session for a policy that wants TLS the host does not give.
	required := func(result string, cause error) (*client, *hostFailure, bool) {
		d.reportTLS(h, j, t.ip.String(), result)
		c.quit(d.pool.quitTimeout)
		return nil, tlsRequired(t.host, h, result, cause), false
	}
	if !tryTLS || !c.has("STARTTLS") {
		if h.level > TLSMay {
			return required("starttls-not-supported", nil)
		}
		d.reportTLS(h, j, t.ip.String(), "starttls-not-supported")
		c.verify = VerifyNone
		return c, nil, false
	}
	r, err = c.startTLS(ctx, tlsClientConfig(t.host))
	var te tlsError
	switch {
	case errors.As(err, &te):
		c.close()
		if h.level > TLSMay {
			d.reportTLS(h, j, t.ip.String(), "validation-failure")
			return nil, tlsRequired(t.host, h, "validation-failure", err), false
		}
		return nil, &hostFailure{err: smtperr.New(451, smtperr.TempCrypto, "TLS handshake with %s failed", t.host).
			Wrap(err)}, true
	case err != nil:
		return lost("STARTTLS", err, false)
	case r.code == 421:
		return refused(r)
	case r.code != 220:
		if h.level > TLSMay {
			return required("starttls-not-supported", fmt.Errorf("STARTTLS refused: %s", r))
		}
		// The server offered STARTTLS and then declined it: go on in plain text (opportunistic TLS).
		d.reportTLS(h, j, t.ip.String(), "starttls-not-supported")
		c.verify = VerifyNone
		return c, nil, false
	}
	// The certificate is checked before anything of the message is sent.
	result, verr := d.verifyPeer(c.tlsState, t.host, h)
	c.verify = result
	if verr != nil && (h.level >= TLSVerify || h.tlsa != nil) {
		return required(result, verr)
	}
	if verr != nil {
		d.reportTLS(h, j, t.ip.String(), result) // MTA-STS testing: reported, delivered
	} else {
		d.reportTLS(h, j, t.ip.String(), "")
	}
	// RFC 3207 §4.2: the client must forget what it knew of the server and send EHLO again.
	if r, err = c.hello(src.HELO); err != nil {
		return lost("EHLO", err, false)
	}
	if r.code/100 != 2 {
		return refused(r)
	}
	return c, nil, false
}

// txResult is the end of one transaction.
type txResult struct {
	rcpts []RcptResult // outcomes, when fail is nil
	fail  *hostFailure // the host failed: try the next
	keep  bool         // the connection is fit for the next message
	stale bool         // a reused connection failed at its first command: dial again
	// accepted counts the recipients the host accepted, for the log.
	accepted int
}

// transaction sends one message over c, to the recipients of rcpts without an outcome yet.
func (d *Deliverer) transaction(c *client, j Job, in []RcptResult, reused bool) txResult {
	rcpts := append([]RcptResult(nil), in...)
	host := c.host
	hostFail := func(stage string, err error) txResult {
		return txResult{
			fail:  &hostFailure{err: connectionError(host, stage, err), reached: true},
			stale: reused && stage == "MAIL FROM",
		}
	}
	closing := func(stage string, r reply) txResult {
		return txResult{
			fail:  &hostFailure{err: remoteError(host, r), reply: true, remote: r.raw, reached: true},
			stale: reused && stage == "MAIL FROM",
		}
	}
	// setAll gives err, and the remote reply that caused it ("" for none), to the recipients that have no
	// outcome yet and are in set (nil: all).
	setAll := func(err *smtperr.Error, remote string, set []int) {
		if set == nil {
			for i := range rcpts {
				if rcpts[i].Err == nil {
					rcpts[i].Err, rcpts[i].Reply = err, remote
				}
			}
			return
		}
		for _, i := range set {
			rcpts[i].Err, rcpts[i].Reply = err, remote
		}
	}
	done := func(keep bool, accepted int) txResult {
		if keep {
			// RSET leaves the connection clean for the next message and shows it is still alive.
			r, err := c.cmd(c.timeout, "RSET")
			keep = err == nil && r.code/100 == 2
		}
		return txResult{rcpts: rcpts, keep: keep, accepted: accepted}
	}

	// RFC 6531 §3.4: a message that needs SMTPUTF8 cannot go to a server without it.
	if j.SMTPUTF8 && !c.has("SMTPUTF8") {
		setAll(noSMTPUTF8(host), "", nil)
		return txResult{rcpts: rcpts, keep: true}
	}

	mail := "MAIL FROM:<" + j.Sender + ">"
	if j.Size > 0 && c.has("SIZE") {
		mail += " SIZE=" + strconv.FormatInt(j.Size, 10) // RFC 1870 §6
	}
	if j.EightBit && c.has("8BITMIME") {
		// RFC 6152 §3. A server without 8BITMIME still gets the message as it is: RFC 6152 would have it
		// converted to 7 bit or returned, but in practice every server takes 8-bit data, and other MTAs
		// (Postfix by default) send it unchanged too.
		mail += " BODY=8BITMIME"
	}
	if j.SMTPUTF8 {
		mail += " SMTPUTF8"
	}
	r, err := c.cmd(c.timeout, "%s", mail)
	switch {
	case err != nil:
		return hostFail("MAIL FROM", err)
	case r.code == 421:
		return closing("MAIL FROM", r)
	case r.code/100 == 4 || r.code/100 == 5:
		setAll(remoteError(host, r), r.raw, nil)
		return done(true, 0)
	case r.code/100 != 2:
		setAll(unexpectedReply(host, "MAIL FROM", r), r.raw, nil)
		return done(true, 0)
	}

	var accepted []int
	for i := range rcpts {
		if rcpts[i].Err != nil {
			continue
		}
		r, err := c.cmd(c.timeout, "RCPT TO:<%s>", rcpts[i].Rcpt)
		switch {
		case err != nil:
			return hostFail("RCPT TO", err)
		case r.code == 421:
			return closing("RCPT TO", r)
		case r.code/100 == 2:
			accepted = append(accepted, i)
		case r.code/100 == 4 || r.code/100 == 5:
			rcpts[i].Err, rcpts[i].Reply = remoteError(host, r), r.raw
		default:
			rcpts[i].Err, rcpts[i].Reply = unexpectedReply(host, "RCPT TO", r), r.raw
		}
	}
	if len(accepted) == 0 {
		return done(true, 0)
	}

	content, err := j.Open()
	if err != nil {
		setAll(smtperr.LocalError.Wrap(fmt.Errorf("opening message content: %w", err)), "", accepted)
		return done(true, 0)
	}
	defer content.Close()

	r, err = c.cmd(c.timeout, "DATA")
	switch {
	case err != nil:
		return hostFail("DATA", err)
	case r.code == 421:
		return closing("DATA", r)
	case r.code == 354:
	case r.code/100 == 4 || r.code/100 == 5:
		setAll(remoteError(host, r), r.raw, accepted)
		return done(true, 0)
	default:
		setAll(unexpectedReply(host, "DATA", r), r.raw, accepted)
		return done(false, 0)
	}

	r, err = c.data(content)
	var se sourceError
	switch {
	case errors.As(err, &se):
		// Our side failed mid-transfer. Closing the connection without the final dot makes the server drop
		// the incomplete message (RFC 5321 §4.1.1.4).
		setAll(smtperr.LocalError.Wrap(err), "", accepted)
		return txResult{rcpts: rcpts}
	case err != nil:
		return hostFail("message transfer", err)
	case r.code == 421:
		return closing("end of DATA", r)
	case r.code/100 == 2:
		// The final reply applies to every accepted recipient (RFC 5321 §4.1.1.4); it is kept as the proof
		// of delivery ("queued as ...").
		for _, i := range accepted {
			rcpts[i].Reply = r.raw
		}
		return done(true, len(accepted))
	case r.code/100 == 4 || r.code/100 == 5:
		setAll(remoteError(host, r), r.raw, accepted)
		return done(true, 0)
	default:
		setAll(unexpectedReply(host, "end of DATA", r), r.raw, accepted)
		return done(false, 0)
	}
}

// debug logs one attempt.
func (d *Deliverer) debug(ctx context.Context, j Job, t target, reused bool, c *client, tx txResult) {
	attrs := []any{
		"queue_id", j.QueueID, "domain", j.Domain, "mx", t.host, "ip", t.ip.String(),
		"source", j.Source.IP.String(), "reused", reused,
	}
	if c != nil {
		attrs = append(attrs, "tls", c.tlsDescription())
	}
	switch {
	case tx.fail != nil:
		attrs = append(attrs, "error", tx.fail.err.Error(), "stale", tx.stale)
	default:
		attrs = append(attrs, "accepted", tx.accepted, "recipients", len(tx.rcpts))
	}
	d.log.DebugContext(ctx, "delivery attempt", attrs...)
}
