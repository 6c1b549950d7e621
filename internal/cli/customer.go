package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"easymail/internal/api"
	"easymail/internal/customer"
)

// commands returns every client subcommand.
func commands() []*command {
	var all []*command
	all = append(all, localCommands()...)
	all = append(all, customerCommands()...)
	all = append(all, dkimCommands()...)
	all = append(all, limitCommands()...)
	all = append(all, queueCommands()...)
	all = append(all, poolCommands()...)
	all = append(all, tokenCommands()...)
	all = append(all, userCommands()...)
	all = append(all, analysisCommands()...)
	all = append(all, scanCommands()...)
	all = append(all, incidentCommands()...)
	all = append(all, lifecycleCommands()...)
	all = append(all, eventCommands()...)
	all = append(all, tlsCommands()...)
	return all
}

// boolFlag is an optional boolean flag: set records whether it was given.
type boolFlag struct {
	value, set bool
}

func (b *boolFlag) String() string   { return strconv.FormatBool(b.value) }
func (b *boolFlag) IsBoolFlag() bool { return true }
func (b *boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean: %q", s)
	}
	b.value, b.set = v, true
	return nil
}

func (b *boolFlag) ptr() *bool {
	if !b.set {
		return nil
	}
	v := b.value
	return &v
}

func customerCommands() []*command {
	return []*command{
		{name: "customer add", args: "--name N --contact EMAIL [--pool P] [--fallback-pool P]", summary: "register a customer",
			help: "The customer starts in status pending; the answer shows its onboarding link.",
			setup: func(fs *flag.FlagSet) runFunc {
				name := fs.String("name", "", "customer name (required)")
				contact := fs.String("contact", "", "contact e-mail address (required)")
				technical := fs.String("technical", "", "technical contact (default: --contact)")
				admin := fs.String("admin", "", "administrative contact (default: --contact)")
				pool := fs.String("pool", "", "outbound IP pool (default: the first configured pool)")
				fallback := fs.String("fallback-pool", "", "pool used when no IP of the pool is usable (default: none)")
				var th, as boolFlag
				fs.Var(&th, "topology-hiding", "remove the customer's internal Received headers (default true)")
				fs.Var(&as, "anti-spoofing", "require the header From domain to be the customer's (default true)")
				return func(ctx context.Context, e *env, _ []string) error {
					if *name == "" || *contact == "" {
						return usagef("--name and --contact are required")
					}
					c, err := e.client.CreateCustomer(ctx, api.CustomerCreate{Name: *name, ContactEmail: *contact,
						TechnicalEmail: *technical, AdminEmail: *admin, Pool: *pool,
						FallbackPool: *fallback, TopologyHiding: th.ptr(), AntiSpoofing: as.ptr()})
					if err != nil {
						return err
					}
					return showCustomer(e, c)
				}
			}},
		{name: "customer list", summary: "list customers",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.ListCustomers(ctx)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, c := range list {
						doms := make([]string, len(c.Domains))
						for j, d := range c.Domains {
							doms[j] = d.Domain
						}
						rows[i] = []string{c.ID, c.Name, string(c.Status), c.Pool, strings.Join(doms, ","), c.ContactEmail}
					}
					table(e.out, []string{"ID", "NAME", "STATUS", "POOL", "DOMAINS", "CONTACT"}, rows)
					return nil
				}
			}},
		{name: "customer show", args: "ID", nargs: 1, summary: "show a customer with its domains, relay hosts and source IPs",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					c, err := e.client.GetCustomer(ctx, a[0])
					if err != nil {
						return err
					}
					return showCustomer(e, c)
				}
			}},
		{name: "customer update", args: "ID [--name N] [--contact EMAIL] [--pool P] [--fallback-pool P] [--status S] [--topology-hiding=BOOL] [--anti-spoofing=BOOL] [--tls-policy may|encrypt|verify|\"\"] [--portal=BOOL]",
			nargs: 1, summary: "change a customer", help: "Status is active or pending; a termination is scheduled with customer terminate.",
			setup: func(fs *flag.FlagSet) runFunc {
				var in api.CustomerUpdate
				str := func(dst **string, name, usage string) {
					fs.Func(name, usage, func(s string) error { *dst = &s; return nil })
				}
				str(&in.Name, "name", "new name")
				str(&in.ContactEmail, "contact", "new contact e-mail address")
				str(&in.TechnicalEmail, "technical", "new technical contact (\"\" for the contact address)")
				str(&in.AdminEmail, "admin", "new administrative contact (\"\" for the contact address)")
				str(&in.Pool, "pool", "new outbound IP pool")
				str(&in.FallbackPool, "fallback-pool", "new fallback pool (\"\" for none)")
				fs.Func("status", "new status: active or pending", func(s string) error { st := customer.Status(s); in.Status = &st; return nil })
				str(&in.TLSPolicy, "tls-policy", "TLS policy of the customer's mail: may, encrypt, verify (\"\" for the configured default)")
				str(&in.Unsubscribe, "unsubscribe", "one-click unsubscription: delegated (the relay adds and honours it) or \"\" (none)")
				var th, as, portal boolFlag
				fs.Var(&th, "topology-hiding", "remove the customer's internal Received headers")
				fs.Var(&as, "anti-spoofing", "require the header From domain to be the customer's")
				fs.Var(&portal, "portal", "open (true) or close (false) the portal to the customer's users")
				return func(ctx context.Context, e *env, a []string) error {
					in.TopologyHiding, in.AntiSpoofing, in.PortalEnabled = th.ptr(), as.ptr(), portal.ptr()
					if in == (api.CustomerUpdate{}) {
						return usagef("nothing to change: give at least one of --name, --contact, --pool, --fallback-pool, --status, --topology-hiding, --anti-spoofing, --tls-policy, --unsubscribe, --portal")
					}
					c, err := e.client.UpdateCustomer(ctx, a[0], in)
					if err != nil {
						return err
					}
					return showCustomer(e, c)
				}
			}},
		{name: "customer delete", args: "ID --yes", nargs: 1, summary: "delete a customer with its domains, relay hosts and source IPs",
			help: "It cannot be undone: --yes confirms it (without it nothing is deleted and the exit status is 2).",
			setup: func(fs *flag.FlagSet) runFunc {
				yes := fs.Bool("yes", false, "confirm the deletion")
				return func(ctx context.Context, e *env, a []string) error {
					if !*yes {
						return usagef("deleting customer %s removes its domains, DKIM keys, relay hosts and source IPs and cannot be undone: add --yes to confirm", a[0])
					}
					if err := e.client.DeleteCustomer(ctx, a[0]); err != nil {
						return err
					}
					return done(e, "customer "+a[0]+" deleted")
				}
			}},
		{name: "customer onboarding", args: "ID", nargs: 1, summary: "make a fresh onboarding link",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					o, err := e.client.CreateOnboarding(ctx, a[0])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, o)
					}
					kv(e.out, [2]string{"onboarding_url", o.URL}, [2]string{"expires_at", fmtTime(o.ExpiresAt)})
					return nil
				}
			}},
		{name: "customer domain add", args: "ID DOMAIN [--include-subdomains]", nargs: 2, summary: "add a sending domain",
			help: "Only the domain itself may send unless --include-subdomains is given. A public suffix (com, co.uk) is refused.",
			setup: func(fs *flag.FlagSet) runFunc {
				include := fs.Bool("include-subdomains", false, "let the domain's subdomains send too")
				return func(ctx context.Context, e *env, a []string) error {
					d, err := e.client.AddDomainWith(ctx, a[0], api.DomainRequest{Domain: a[1], IncludeSubdomains: *include})
					if err != nil {
						return err
					}
					return showDomain(e, d)
				}
			}},
		{name: "customer domain update", args: "ID DOMAIN --include-subdomains=BOOL", nargs: 2, summary: "change a sending domain",
			setup: func(fs *flag.FlagSet) runFunc {
				var include boolFlag
				fs.Var(&include, "include-subdomains", "whether the domain's subdomains may send too")
				return func(ctx context.Context, e *env, a []string) error {
					if !include.set {
						return usagef("nothing to change: give --include-subdomains=true or --include-subdomains=false")
					}
					d, err := e.client.UpdateDomain(ctx, a[0], a[1], api.DomainUpdate{IncludeSubdomains: include.ptr()})
					if err != nil {
						return err
					}
					return showDomain(e, d)
				}
			}},
		{name: "customer domain remove", args: "ID DOMAIN", nargs: 2, summary: "remove a sending domain",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.RemoveDomain(ctx, a[0], a[1]); err != nil {
						return err
					}
					return done(e, "domain "+a[1]+" removed")
				}
			}},
		{name: "customer relay-host add", args: "ID HOST", nargs: 2, summary: "add a relay host (host name or IP)",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					h, err := e.client.AddRelayHost(ctx, a[0], a[1])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, h)
					}
					kv(e.out, [2]string{"id", h.ID}, [2]string{"host", h.Host}, [2]string{"customer", h.CustomerID})
					section(e.out, "Addresses", len(h.Addresses) == 0, func() { addressTable(e.out, []api.RelayHost{*h}) })
					if h.ResolveError != "" {
						fmt.Fprintf(e.out, "\nresolve error: %s\n", h.ResolveError)
					}
					return nil
				}
			}},
		{name: "customer relay-host remove", args: "ID HOSTID", nargs: 2, summary: "remove a relay host by its id",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.RemoveRelayHost(ctx, a[0], a[1]); err != nil {
						return err
					}
					return done(e, "relay host "+a[1]+" removed")
				}
			}},
		{name: "customer source-ip add", args: "ID CIDR", nargs: 2, summary: "add a source IP or CIDR",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					ip, err := e.client.AddSourceIP(ctx, a[0], a[1])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, ip)
					}
					if ip.Warning != "" {
						fmt.Fprintln(e.errOut, "warning: "+ip.Warning)
					}
					kv(e.out, [2]string{"id", ip.ID}, [2]string{"cidr", ip.CIDR}, [2]string{"customer", ip.CustomerID})
					return nil
				}
			}},
		{name: "customer source-ip remove", args: "ID IPID", nargs: 2, summary: "remove a source IP by its id",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.RemoveSourceIP(ctx, a[0], a[1]); err != nil {
						return err
					}
					return done(e, "source IP "+a[1]+" removed")
				}
			}},
	}
}

// done reports a change that the API answers without a body.
func done(e *env, msg string) error {
	if e.json {
		return printJSON(e.out, map[string]bool{"ok": true})
	}
	_, err := fmt.Fprintln(e.out, msg)
	return err
}

// orDefault shows an empty setting as the configured default.
func orDefault(s string) string {
	if s == "" {
		return "(configured default)"
	}
	return s
}

// orNone shows an empty setting as "(none)".
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func showCustomer(e *env, c *api.Customer) error {
	if e.json {
		return printJSON(e.out, c)
	}
	pairs := [][2]string{
		{"id", c.ID}, {"name", c.Name}, {"contact", c.ContactEmail}, {"technical_contact", c.TechnicalEmail},
		{"admin_contact", c.AdminEmail}, {"pool", c.Pool}, {"fallback_pool", c.FallbackPool}, {"status", string(c.Status)},
		{"topology_hiding", strconv.FormatBool(c.TopologyHiding)}, {"anti_spoofing", strconv.FormatBool(c.AntiSpoofing)},
		{"tls_policy", orDefault(c.TLSPolicy)}, {"unsubscribe", orNone(c.Unsubscribe)}, {"portal_enabled", strconv.FormatBool(c.PortalEnabled)},
		{"created", fmtTime(c.CreatedAt)}, {"updated", fmtTime(c.UpdatedAt)},
	}
	if c.OnboardingURL != "" {
		pairs = append(pairs, [2]string{"onboarding_url", c.OnboardingURL})
	}
	for _, t := range []struct {
		k string
		v *time.Time
	}{{"activated", c.ActivatedAt}, {"deactivate_at", c.DeactivateAt}, {"deactivated", c.DeactivatedAt}, {"removed", c.RemovedAt}} {
		if t.v != nil {
			pairs = append(pairs, [2]string{t.k, fmtTime(*t.v)})
		}
	}
	pairs = append(pairs, limitPairs(c)...)
	kv(e.out, pairs...)
	section(e.out, "Domains", len(c.Domains) == 0, func() {
		rows := make([][]string, len(c.Domains))
		for i, d := range c.Domains {
			rows[i] = []string{d.Domain, strconv.FormatBool(d.IncludeSubdomains), fmtTime(d.CreatedAt)}
		}
		table(e.out, []string{"DOMAIN", "SUBDOMAINS", "ADDED"}, rows)
	})
	section(e.out, "Relay hosts", len(c.RelayHosts) == 0, func() {
		rows := make([][]string, len(c.RelayHosts))
		for i, h := range c.RelayHosts {
			note := h.ResolveError
			if h.Truncated {
				note = strings.TrimPrefix(note+"; only the first addresses are used", "; ")
			}
			rows[i] = []string{h.ID, h.Host, fmtTime(h.CreatedAt), note}
		}
		table(e.out, []string{"ID", "HOST", "ADDED", "NOTE"}, rows)
	})
	var withAddrs []api.RelayHost
	for _, h := range c.RelayHosts {
		if len(h.Addresses) > 0 {
			withAddrs = append(withAddrs, h)
		}
	}
	if len(withAddrs) > 0 {
		section(e.out, "Relay host addresses", false, func() { addressTable(e.out, withAddrs) })
	}
	section(e.out, "Source IPs", len(c.SourceIPs) == 0, func() {
		rows := make([][]string, len(c.SourceIPs))
		for i, p := range c.SourceIPs {
			rows[i] = []string{p.ID, p.CIDR, fmtTime(p.CreatedAt)}
		}
		table(e.out, []string{"ID", "CIDR", "ADDED"}, rows)
	})
	return nil
}

// showDomain prints one domain with its DKIM record.
func showDomain(e *env, d *api.Domain) error {
	if e.json {
		return printJSON(e.out, d)
	}
	dkim := "none yet"
	if d.DKIM != nil {
		dkim = d.DKIM.Name + " " + d.DKIM.Type + " " + d.DKIM.Value
	}
	kv(e.out, [2]string{"domain", d.Domain}, [2]string{"customer", d.CustomerID},
		[2]string{"include_subdomains", strconv.FormatBool(d.IncludeSubdomains)}, [2]string{"dkim", dkim})
	return nil
}

// addressTable prints the addresses of relay hosts: used, or ignored and why.
func addressTable(w io.Writer, hosts []api.RelayHost) {
	var rows [][]string
	for _, h := range hosts {
		for _, a := range h.Addresses {
			state := "used"
			if !a.Used {
				state = "ignored (" + a.Ignored + "): " + a.Detail
			}
			rows = append(rows, []string{h.Host, a.Address, state})
		}
	}
	table(w, []string{"HOST", "ADDRESS", "STATE"}, rows)
}

// section writes a titled block: "(none)" when empty, else what body writes.
func section(w io.Writer, title string, empty bool, body func()) {
	fmt.Fprintf(w, "\n%s:\n", title)
	if empty {
		fmt.Fprintln(w, "  (none)")
		return
	}
	body()
}
