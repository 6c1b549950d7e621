// Package shaping is provider-aware traffic shaping for the delivery: destinations whose MX hosts belong to
// one provider (Google, Microsoft, Yahoo, ...: MX rollup by host name patterns) share its limits — concurrent
// connections across all outbound IPs and per IP, messages per connection, and messages per minute and
// hour from each IP — and a "slow down" reply (421, 4.7.x throttling texts, a listed-IP refusal, by a rule
// table like the bounce classes) pauses deliveries from that IP to that provider, for a time that doubles
// with each repeat, then resumes them at a reduced rate that doubles back each minute without trouble.
//
// A delivery that may not go now is given a temporary outcome (451 4.7.0) without connecting: the queue
// retries it on its schedule.
package shaping

import (
	"context"
	_ "embed"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/bounce"
	"easymail/internal/config"
)

//go:embed throttle.yaml
var embeddedRules []byte

// Classes of the throttling rules.
const (
	Throttle = "throttle"
	Listed   = "listed"
)

var defaultRules = func() *bounce.Classifier {
	c, err := bounce.ParseClasses(embeddedRules, []string{Throttle, Listed})
	if err != nil {
		panic(err)
	}
	return c
}()

// Classify returns Throttle, Listed or bounce.Other for a temporary failure's reply.
func Classify(code int, enhanced, text string) string {
	return defaultRules.Classify(code, enhanced, text)
}

// Provider is a receiver's limits (config shaping.providers).
type Provider = config.Provider

// Options configure a Shaper.
type Options struct {
	Providers []Provider
	// PauseBase is the pause after a first throttling reply; each further one before a delivery goes
	// through doubles it, up to PauseMax. Defaults: 1m, 1h.
	PauseBase, PauseMax time.Duration
	// Now is the clock; nil is time.Now.
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Shaper applies the providers' limits. It is safe for concurrent use.
type Shaper struct {
	o         Options
	providers []*provider

	mu    sync.Mutex
	pairs map[pairKey]*pair

	throttles *prometheus.CounterVec
	deferrals *prometheus.CounterVec
	sent      *prometheus.CounterVec
}

type provider struct {
	Provider
	conns *sem
	perIP map[netip.Addr]*sem // guarded by Shaper.mu
}

type pairKey struct {
	ip       netip.Addr
	provider string
}

// pair is the state of one outbound IP × provider.
type pair struct {
	pausedUntil  time.Time
	strikes      int     // throttling replies since the last delivery that went through
	factor       float64 // the share of the limits in force (1 normally, less while resuming)
	lastReason   string
	lastThrottle time.Time
	// minute and hour count the messages admitted in the current minute and hour.
	minute, hour           int
	minuteStart, hourStart time.Time
}

// New returns a shaper.
func New(o Options) (*Shaper, error) {
	if o.PauseBase <= 0 {
		o.PauseBase = time.Minute
	}
	if o.PauseMax < o.PauseBase {
		o.PauseMax = max(time.Hour, o.PauseBase)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Shaper{o: o, pairs: map[pairKey]*pair{},
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_shaping_throttles_total",
			Help: "Throttling replies (slow down, listed IP) that paused an outbound IP for a provider, by provider, IP and class."},
			[]string{"provider", "ip", "class"}),
		deferrals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_shaping_deferrals_total",
			Help: "Deliveries deferred without connecting by provider shaping, by provider and reason (paused, rate)."},
			[]string{"provider", "reason"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_shaping_admitted_total",
			Help: "Deliveries admitted to a provider, by provider."}, []string{"provider"}),
	}
	seen := map[string]bool{}
	for _, p := range o.Providers {
		if p.Name == "" || seen[p.Name] {
			return nil, fmt.Errorf("shaping: provider name %q is empty or repeated", p.Name)
		}
		seen[p.Name] = true
		if len(p.MX) == 0 {
			return nil, fmt.Errorf("shaping: provider %s has no mx patterns", p.Name)
		}
		for _, m := range p.MX {
			if _, err := path.Match(m, "x"); err != nil {
				return nil, fmt.Errorf("shaping: provider %s: mx pattern %q: %v", p.Name, m, err)
			}
		}
		if p.MaxConnections < 0 || p.MaxConnectionsPerIP < 0 || p.MessagesPerConnection < 0 || p.PerMinute < 0 || p.PerHour < 0 {
			return nil, fmt.Errorf("shaping: provider %s: limits must not be negative", p.Name)
		}
		s.providers = append(s.providers, &provider{Provider: p, conns: newSem(p.MaxConnections), perIP: map[netip.Addr]*sem{}})
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.throttles, s.deferrals, s.sent)
	}
	return s, nil
}

// match returns the provider of the first MX host (in the order given) that matches one, or nil.
func (s *Shaper) match(hosts []string) *provider {
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		for _, p := range s.providers {
			for _, pat := range p.MX {
				if ok, _ := path.Match(strings.ToLower(pat), h); ok {
					return p
				}
			}
		}
	}
	return nil
}

// Provider returns the name of the provider of an MX host list, "" for none.
func (s *Shaper) Provider(hosts []string) string {
	if p := s.match(hosts); p != nil {
		return p.Name
	}
	return ""
}

func (s *Shaper) pairLocked(k pairKey) *pair {
	p := s.pairs[k]
	if p == nil {
		p = &pair{factor: 1}
		s.pairs[k] = p
	}
	return p
}

// Deferral says why a delivery may not go now.
type Deferral struct {
	Provider string
	Reason   string // paused, rate, connections
	Until    time.Time
	Detail   string
}

func (d *Deferral) Error() string {
	switch d.Reason {
	case "paused":
		return fmt.Sprintf("Deliveries to %s from this IP are paused until %s after its throttling reply: %s",
			d.Provider, d.Until.UTC().Format(time.RFC3339), d.Detail)
	default:
		return fmt.Sprintf("Provider %s: %s", d.Provider, d.Detail)
	}
}

// Admission is a delivery let through to a provider; Done must be called once with its outcome.
type Admission struct {
	s       *Shaper
	p       *provider
	key     pairKey
	release []func()
	// PerConnection is the provider's messages-per-connection limit (0: none).
	PerConnection int
}

// Admit decides whether a delivery from ip to the MX hosts may go now. It returns nil, nil for a
// destination of no provider; a *Deferral when it must wait; else an Admission holding the provider's
// connection places until Done.
func (s *Shaper) Admit(ctx context.Context, ip netip.Addr, hosts []string) (*Admission, *Deferral) {
	p := s.match(hosts)
	if p == nil {
		return nil, nil
	}
	now := s.o.Now()
	k := pairKey{ip: ip, provider: p.Name}
	s.mu.Lock()
	st := s.pairLocked(k)
	if now.Before(st.pausedUntil) {
		s.mu.Unlock()
		s.deferrals.WithLabelValues(p.Name, "paused").Inc()
		return nil, &Deferral{Provider: p.Name, Reason: "paused", Until: st.pausedUntil, Detail: st.lastReason}
	}
	if now.Sub(st.minuteStart) >= time.Minute {
		// A minute without trouble doubles the share of the limits back.
		if st.factor < 1 && now.Sub(st.lastThrottle) >= time.Minute {
			st.factor = min(1, st.factor*2)
		}
		st.minute, st.minuteStart = 0, now
	}
	if now.Sub(st.hourStart) >= time.Hour {
		st.hour, st.hourStart = 0, now
	}
	if lim := limitOf(p.PerMinute, 60, st.factor); lim > 0 && st.minute >= lim {
		s.mu.Unlock()
		s.deferrals.WithLabelValues(p.Name, "rate").Inc()
		return nil, &Deferral{Provider: p.Name, Reason: "rate", Detail: fmt.Sprintf("%d messages per minute from this IP reached", lim)}
	}
	if lim := limitOf(p.PerHour, 0, st.factor); lim > 0 && st.hour >= lim {
		s.mu.Unlock()
		s.deferrals.WithLabelValues(p.Name, "rate").Inc()
		return nil, &Deferral{Provider: p.Name, Reason: "rate", Detail: fmt.Sprintf("%d messages per hour from this IP reached", lim)}
	}
	ipSem := p.perIP[ip]
	if ipSem == nil {
		ipSem = newSem(p.MaxConnectionsPerIP)
		p.perIP[ip] = ipSem
	}
	st.minute++
	st.hour++
	s.mu.Unlock()
	// The connection places are waited for, as the per-destination limit is: busy is no reason to defer.
	a := &Admission{s: s, p: p, key: k, PerConnection: p.MessagesPerConnection}
	for _, x := range []*sem{p.conns, ipSem} {
		if err := x.acquire(ctx); err != nil {
			a.giveBack()
			return nil, &Deferral{Provider: p.Name, Reason: "aborted", Detail: "waiting for a connection: " + err.Error()}
		}
		a.release = append(a.release, x.give)
	}
	s.sent.WithLabelValues(p.Name).Inc()
	return a, nil
}

func (a *Admission) giveBack() {
	for _, r := range a.release {
		r()
	}
	a.release = nil
}

// limitOf is limit scaled by factor, at least 1; 0 for no limit. Without a configured limit (0), resuming
// after a pause (factor < 1) still starts slowly from resume (60 a minute at full share); a resume of 0 is
// no limit.
func limitOf(limit, resume int, factor float64) int {
	if limit <= 0 {
		if factor >= 1 || resume <= 0 {
			return 0
		}
		limit = resume
	}
	return max(1, int(float64(limit)*factor))
}

// Reply is one temporary failure reply of a delivery: its code, enhanced code and text.
type Reply struct {
	Code     int
	Enhanced string
	Text     string
}

// Done gives the admission's connection places back and learns from its outcome: a throttling reply pauses
// the IP for the provider; a delivery that went through clears the strikes.
func (a *Admission) Done(delivered bool, temp []Reply) {
	a.giveBack()
	s := a.s
	var class, reason string
	for _, r := range temp {
		if c := Classify(r.Code, r.Enhanced, r.Text); c == Throttle || c == Listed {
			class, reason = c, r.Text
			break
		}
	}
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pairLocked(a.key)
	if class == "" {
		if delivered {
			st.strikes = 0
		}
		return
	}
	st.strikes++
	pause := s.o.PauseBase
	for i := 1; i < st.strikes && pause < s.o.PauseMax; i++ {
		pause *= 2
	}
	pause = min(pause, s.o.PauseMax)
	st.pausedUntil = now.Add(pause)
	st.lastThrottle = now
	st.factor = max(st.factor/2, 1.0/64)
	st.minute, st.minuteStart = 0, st.pausedUntil
	if len(reason) > 200 {
		reason = reason[:200]
	}
	st.lastReason = reason
	s.throttles.WithLabelValues(a.p.Name, a.key.ip.String(), class).Inc()
}

// PairState is the shaping state of one outbound IP for one provider, for the API.
type PairState struct {
	IP          string    `json:"ip"`
	Paused      bool      `json:"paused"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Strikes     int       `json:"strikes"`
	// Share is the part of the provider's rate limits in force (1, or less while resuming after a pause).
	Share      float64 `json:"share"`
	LastReply  string  `json:"last_reply,omitempty"`
	LastMinute int     `json:"sent_this_minute"`
	LastHour   int     `json:"sent_this_hour"`
}

// ProviderState is one provider's limits and the state of each outbound IP that sent to it.
type ProviderState struct {
	Provider
	IPs []PairState `json:"ips"`
}

// State returns every provider's limits and pairs, by provider then IP.
func (s *Shaper) State() []ProviderState {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProviderState, 0, len(s.providers))
	for _, p := range s.providers {
		ps := ProviderState{Provider: p.Provider, IPs: []PairState{}}
		for k, st := range s.pairs {
			if k.provider != p.Name {
				continue
			}
			e := PairState{IP: k.ip.String(), Strikes: st.strikes, Share: st.factor, LastReply: st.lastReason,
				LastMinute: st.minute, LastHour: st.hour}
			if now.Before(st.pausedUntil) {
				e.Paused, e.PausedUntil = true, st.pausedUntil.UTC()
			}
			ps.IPs = append(ps.IPs, e)
		}
		slices.SortFunc(ps.IPs, func(a, b PairState) int { return strings.Compare(a.IP, b.IP) })
		out = append(out, ps)
	}
	return out
}

// Resume ends the pause of ip for the named provider at once (an operator's decision) and restores its full
// share; it reports false when there is no such provider.
func (s *Shaper) Resume(providerName string, ip netip.Addr) bool {
	if !slices.ContainsFunc(s.providers, func(p *provider) bool { return p.Name == providerName }) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pairLocked(pairKey{ip: ip, provider: providerName})
	st.pausedUntil, st.strikes, st.factor = time.Time{}, 0, 1
	return true
}

// sem is a counting semaphore; a nil channel (max 0) is unlimited.
type sem struct{ c chan struct{} }

func newSem(max int) *sem {
	if max <= 0 {
		return &sem{}
	}
	return &sem{c: make(chan struct{}, max)}
}

func (s *sem) acquire(ctx context.Context) error {
	if s.c == nil {
		return nil
	}
	select {
	case s.c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sem) give() {
	if s.c != nil {
		<-s.c
	}
}
