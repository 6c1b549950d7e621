package delivery

import (
	"context"
	"fmt"

	"easymail/internal/resolver"
	"easymail/internal/shaping"
	"easymail/internal/smtperr"
)

// admit asks the provider shaping (Options.Shaper) whether j may go to the MX hosts now. It returns the
// admission to finish with shaped (nil when there is no shaper or the destination belongs to no provider),
// or the temporary outcome of a delivery that must wait: 451 4.7.0, without connecting.
func (d *Deliverer) admit(ctx context.Context, j Job, hosts []resolver.MX) (*shaping.Admission, *smtperr.Error) {
	if d.shaper == nil {
		return nil, nil
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Host
	}
	adm, def := d.shaper.Admit(ctx, j.Source.IP, names)
	if def != nil {
		if def.Reason == "aborted" {
			return nil, aborted(ctx.Err())
		}
		return nil, smtperr.New(451, smtperr.TempSecurity, "%s", def.Error())
	}
	return adm, nil
}

// shaped tells the shaping the outcome of an admitted delivery: whether a recipient got through, and the
// remote hosts' temporary refusals, which may mean "slow down".
func shaped(adm *shaping.Admission, res *Result) {
	if adm == nil {
		return
	}
	delivered := false
	var temp []shaping.Reply
	for _, r := range res.Rcpts {
		switch {
		case r.Err == nil:
			delivered = true
		case r.Err.Temporary() && r.Reply != "":
			e := r.Err.Enhanced
			temp = append(temp, shaping.Reply{Code: r.Err.Code, Enhanced: fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2]), Text: r.Reply})
		}
	}
	adm.Done(delivered, temp)
}

// reuse reports whether a connection that has carried one more message may be kept for the next, under the
// provider's messages-per-connection limit (0: no limit).
func (c *client) reuse(perConn int) bool {
	c.sent++
	return perConn <= 0 || c.sent < perConn
}
