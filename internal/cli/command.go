package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/config"
)

// command is one client subcommand.
type command struct {
	// name is the words that invoke it: "customer domain add".
	name string
	// args describes the arguments and flags, for usage: "ID DOMAIN".
	args string
	// summary is one line for the command list; help is more, for the command's own usage.
	summary string
	help    string
	// nargs is the number of positional arguments; -1 lets the command check them.
	nargs int
	// setup declares the command's flags on fs and returns the function that runs it with the positional
	// arguments, once fs is parsed.
	setup func(fs *flag.FlagSet) runFunc
	// direct, for the commands that do not talk to the API (serve, config check), runs the command with its
	// arguments instead of setup; usage, when not nil, prints its usage.
	direct func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	usage  func(w io.Writer)
}

type runFunc func(ctx context.Context, e *env, args []string) error

// env is what a running command works with.
type env struct {
	client *api.Client
	json   bool
	out    io.Writer
	// errOut is standard error, for prompts.
	errOut io.Writer
}

// globals are the flags every client command takes.
type globals struct {
	api, token, config string
	json               bool
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.api, "api", "", "API base URL (default: $EASYMAIL_API, else from the configuration)")
	fs.StringVar(&g.token, "token", "", "API token (default: $EASYMAIL_TOKEN, else <data_dir>/admin.token)")
	fs.StringVar(&g.config, "config", "", "configuration file giving the defaults of --api and --token")
	fs.BoolVar(&g.json, "json", false, "print JSON")
}

func (c *command) flagSet() (*flag.FlagSet, *globals, runFunc) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g := &globals{}
	run := c.setup(fs)
	g.register(fs)
	return fs, g, run
}

func (c *command) printUsage(w io.Writer, fs *flag.FlagSet) {
	if c.usage != nil {
		c.usage(w)
		return
	}
	if fs == nil && c.direct == nil {
		fs, _, _ = c.flagSet()
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.TrimSpace("easymail "+c.name+" "+c.args), c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", c.help)
	}
	if fs == nil {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func (c *command) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if c.direct != nil {
		return c.direct(ctx, args, stdout, stderr)
	}
	fs, g, run := c.flagSet()
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printUsage(stdout, fs)
		return 0
	}
	if err != nil {
		return report(stderr, c.name, usagef("%v", err))
	}
	if c.nargs >= 0 && len(pos) != c.nargs {
		if c.nargs == 0 {
			return report(stderr, c.name, usagef("takes no arguments, got %q", strings.Join(pos, " ")))
		}
		return report(stderr, c.name, usagef("needs %d argument(s) (%s), got %d", c.nargs, c.args, len(pos)))
	}
	for _, p := range pos {
		if p == "" {
			return report(stderr, c.name, usagef("empty argument"))
		}
	}
	client, err := g.client(os.Getenv)
	if err != nil {
		return report(stderr, c.name, err)
	}
	if err := run(ctx, &env{client: client, json: g.json, out: stdout, errOut: stderr}, pos); err != nil {
		return report(stderr, c.name, flagNamed(fs, connectionHint(err, client.BaseURL)))
	}
	return 0
}

// flagNamed renames the field of an API error to the command's flag where there is one: the API's
// "older_than" (or "filter.older_than") is the CLI's --older-than.
func flagNamed(fs *flag.FlagSet, err error) error {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Field == "" {
		return err
	}
	name := ae.Field
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ReplaceAll(name, "_", "-")
	if fs.Lookup(name) == nil {
		return err
	}
	c := *ae
	c.Message = strings.TrimPrefix(c.Message, ae.Field+": ")
	c.Message = strings.TrimPrefix(c.Message, strings.TrimPrefix(ae.Field, "filter.")+": ")
	c.Field = "--" + name
	return &c
}

// parseInterspersed parses flags anywhere among the positional arguments, which it returns. After "--"
// everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--" (consumed) or at the first non-flag argument.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// hoistGlobals splits the global flags given before the command ("easymail --api URL queue list") from the
// rest, so that they can be handed to the command.
func hoistGlobals(args []string) (globalArgs, rest []string) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		n := 1
		switch name {
		case "json":
		case "api", "token", "config":
			if !hasValue {
				n = 2
			}
		default:
			return globalArgs, args
		}
		if n > len(args) {
			n = len(args)
		}
		globalArgs = append(globalArgs, args[:n]...)
		args = args[n:]
	}
	return globalArgs, args
}

// client builds the API client from the flags, the environment and the local configuration.
func (g *globals) client(getenv func(string) string) (*api.Client, error) {
	base, token := g.api, g.token
	if base == "" {
		base = getenv("EASYMAIL_API")
	}
	if token == "" {
		token = getenv("EASYMAIL_TOKEN")
	}
	if base == "" || token == "" {
		file := config.FindFile(firstNonEmpty(g.config, getenv("EASYMAIL_CONFIG")))
		cfg, err := config.LoadWith(file, config.OverridesFromEnv(getenv))
		if err != nil {
			return nil, fmt.Errorf("no --api/--token given, and the configuration does not load: %w", err)
		}
		if base == "" {
			base = "http://" + dialable(cfg.API.Listen)
		}
		if token == "" {
			path := cfg.Path(authz.AdminTokenFile)
			b, err := os.ReadFile(path)
			switch {
			case err == nil:
				token = strings.TrimSpace(string(b))
			case getenv("EASYMAIL_ADMIN_TOKEN") != "":
				token = getenv("EASYMAIL_ADMIN_TOKEN")
			default:
				return nil, fmt.Errorf("no API token: give --token or EASYMAIL_TOKEN (reading %s: %v)", path, err)
			}
		}
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &api.Client{BaseURL: base, Token: token, HTTP: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// dialable turns a listen address into one to connect to: an unspecified host becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// connectionHint explains a failure to reach the API: the server is not running there, or the CLI looks
// in the wrong place.
func connectionHint(err error, base string) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return err
	}
	addr := base
	if u, perr := url.Parse(base); perr == nil && u.Host != "" {
		addr = u.Host
	}
	return fmt.Errorf("%w\nis `easymail serve` running at %s? (set --api or EASYMAIL_API, or give the server's --config)", err, addr)
}
