package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/node"
	"easymail/internal/systemd"
)

const serveUsage = `usage: easymail serve [--config FILE] [--smtp-listen ADDR,...] [--api-listen ADDR] [--data-dir DIR] [--hostname NAME]

Runs the relay until SIGINT or SIGTERM; SIGHUP re-reads the configuration (docs/operations.md).

The configuration file is --config, else $EASYMAIL_CONFIG, else /etc/easymail/easymail.yaml, else
./easymail.yaml, else the embedded defaults; the client commands look for it in the same order. The flags,
and the environment variables EASYMAIL_SMTP_LISTEN, EASYMAIL_API_LISTEN, EASYMAIL_DATA_DIR and
EASYMAIL_HOSTNAME, override the file (the flags win). Under systemd, readiness and the watchdog are
reported over $NOTIFY_SOCKET and sockets passed by socket activation are used for the listen addresses
they are bound to.
`

// serveFlags are serve's flags.
type serveFlags struct {
	config string
	over   config.Overrides
}

func (s *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.config, "config", "", "configuration file (default: $EASYMAIL_CONFIG, /etc/easymail/easymail.yaml, ./easymail.yaml)")
	fs.Func("smtp-listen", "SMTP listen addresses, comma-separated (smtp.listen; $EASYMAIL_SMTP_LISTEN)", func(v string) error {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				s.over.SMTPListen = append(s.over.SMTPListen, a)
			}
		}
		return nil
	})
	fs.StringVar(&s.over.APIListen, "api-listen", "", "API listen address (api.listen; $EASYMAIL_API_LISTEN)")
	fs.StringVar(&s.over.DataDir, "data-dir", "", "data directory (data_dir; $EASYMAIL_DATA_DIR)")
	fs.StringVar(&s.over.Hostname, "hostname", "", "host name (hostname; $EASYMAIL_HOSTNAME)")
}

// load finds and loads the configuration the way serve does.
func (s *serveFlags) load() (string, config.Config, error) {
	file := config.FindFile(firstNonEmpty(s.config, os.Getenv("EASYMAIL_CONFIG")))
	cfg, err := config.LoadWith(file, config.OverridesFromEnv(os.Getenv).Over(s.over))
	if err == nil {
		err = cfg.CheckPaths()
		err = inFileErr(err, file)
	}
	return file, cfg, err
}

// inFileErr names the file in a *config.KeyError found after loading.
func inFileErr(err error, file string) error {
	var ke *config.KeyError
	if errors.As(err, &ke) && ke.File == "" {
		ke.File = file
	}
	return err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// runServe is `easymail serve`: it runs the relay until ctx ends (SIGINT, SIGTERM).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sf serveFlags
	sf.register(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printServeUsage(stdout)
		return 0
	} else if err != nil {
		return report(stderr, "serve", usagef("%v", err))
	}
	if fs.NArg() > 0 {
		return report(stderr, "serve", usagef("takes no arguments, got %q", strings.Join(fs.Args(), " ")))
	}
	file, cfg, err := sf.load()
	if err != nil {
		fmt.Fprintf(stderr, "easymail serve: %v\n", err)
		return 1
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, level, stderr)
	log.Info("easymail starting", "version", versionString(), "config", firstNonEmpty(file, "(embedded defaults)"),
		"data_dir", cfg.DataDir, "hostname", cfg.Hostname)
	logResolver(log, cfg.DNS)
	// The listeners are opened before anything is written to disk, so that a port in use fails the start
	// without leaving a data directory behind.
	hooks, err := listeners(cfg)
	if err != nil {
		log.Error("easymail cannot start", "err", err)
		return 1
	}
	defer closeListeners(hooks)
	tokenPath := cfg.Path(authz.AdminTokenFile)
	tokenBefore, _ := os.Stat(tokenPath)

	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go reloadOnHUP(rctx, log, level, cfg, sf.load)
	ready := func() {
		logToken(log, tokenPath, tokenBefore)
		if _, err := systemd.Notify("READY=1\nSTATUS=accepting mail"); err != nil {
			log.Warn("systemd: readiness not sent", "err", err)
		}
		go systemd.Watchdog(rctx, healthy(hooks.APIListener.Addr().String()))
	}
	err = node.RunWith(ctx, cfg, log, ready, hooks)
	systemd.Notify("STOPPING=1")
	if err != nil {
		log.Error("easymail stopped with an error", "err", err)
		return 1
	}
	return 0
}

func printServeUsage(w io.Writer) {
	fmt.Fprint(w, serveUsage, "\nFlags:\n")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var sf serveFlags
	sf.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// listeners opens the SMTP and API listeners, or takes them from the sockets passed by systemd.
func listeners(cfg config.Config) (node.Hooks, error) {
	passed, err := systemd.Listeners()
	if err != nil {
		return node.Hooks{}, err
	}
	var h node.Hooks
	open := func(key, addr string) (net.Listener, error) {
		l, err := systemd.Take(&passed, addr)
		if errors.Is(err, systemd.ErrNotListening) {
			l, err = net.Listen("tcp", addr)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", key, addr, err)
		}
		return l, nil
	}
	for _, a := range cfg.SMTP.Listen {
		l, err := open("smtp.listen", a)
		if err != nil {
			closeListeners(h)
			return node.Hooks{}, err
		}
		h.SMTPListeners = append(h.SMTPListeners, l)
	}
	if h.APIListener, err = open("api.listen", cfg.API.Listen); err != nil {
		closeListeners(h)
		return node.Hooks{}, err
	}
	if len(passed) > 0 {
		var addrs []string
		for _, l := range passed {
			addrs = append(addrs, l.Addr().String())
			l.Close()
		}
		closeListeners(h)
		return node.Hooks{}, fmt.Errorf("socket activation passed sockets on %s, which neither smtp.listen nor api.listen names", strings.Join(addrs, ", "))
	}
	return h, nil
}

func closeListeners(h node.Hooks) {
	for _, l := range h.SMTPListeners {
		l.Close()
	}
	if h.APIListener != nil {
		h.APIListener.Close()
	}
}

// logResolver says which DNS resolvers are used: embedded defaults never talk to the outside by surprise.
func logResolver(log *slog.Logger, c config.DNS) {
	if len(c.Servers) > 0 {
		log.Info("dns: resolvers from dns.servers", "servers", c.Servers)
		return
	}
	conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		log.Warn("dns: dns.servers is empty and /etc/resolv.conf is unreadable", "err", err)
		return
	}
	log.Info("dns: resolvers of the system (/etc/resolv.conf; set dns.servers to choose others)", "servers", conf.Servers)
}

// logToken says where the operator token is: written at this start, found from an earlier one, or given.
func logToken(log *slog.Logger, path string, before os.FileInfo) {
	if os.Getenv("EASYMAIL_ADMIN_TOKEN") != "" {
		log.Info("admin token: the operator token is EASYMAIL_ADMIN_TOKEN")
		return
	}
	after, err := os.Stat(path)
	switch {
	case err != nil:
		log.Info("admin token: no token file; an operator token exists in the database (easymail token list)")
	case before == nil || !after.ModTime().Equal(before.ModTime()):
		log.Info("admin token written (first start): the CLI on this machine reads it from there", "path", path)
	default:
		log.Info("admin token file", "path", path)
	}
}

// healthy reports whether the API answers /healthz (the database is reachable): the watchdog is fed only
// then.
func healthy(apiAddr string) func() bool {
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + dialable(apiAddr) + "/healthz"
	return func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// liveKeys are the keys a reload applies to the running relay; every other change needs a restart.
var liveKeys = map[string]bool{"log.level": true}

// reloadOnHUP re-reads the configuration on every SIGHUP. A configuration that does not load is refused
// and the running one kept; of a valid one, the live keys are applied and the others named as waiting for
// a restart.
func reloadOnHUP(ctx context.Context, log *slog.Logger, level *slog.LevelVar, running config.Config,
	load func() (string, config.Config, error)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		systemd.Notify("RELOADING=1")
		file, next, err := load()
		if err != nil {
			log.Error("reload: configuration refused; the running configuration is kept", "config", file, "err", err)
			systemd.Notify("READY=1\nSTATUS=accepting mail; the last reload was refused, see the log")
			continue
		}
		var restart []string
		for _, k := range config.Changed(running, next) {
			if !liveKeys[k] {
				restart = append(restart, k)
			}
		}
		if next.Log.Level != running.Log.Level {
			level.Set(parseLevel(next.Log.Level))
			log.Info("reload: log.level applied", "level", next.Log.Level)
			running.Log.Level = next.Log.Level
		}
		if len(restart) > 0 {
			log.Warn("reload: these keys changed and take effect at the next restart", "config", file, "keys", restart)
		} else {
			log.Info("reload: configuration re-read", "config", file)
		}
		systemd.Notify("READY=1\nSTATUS=accepting mail")
	}
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	l.UnmarshalText([]byte(strings.ToUpper(s)))
	return l
}

// newLogger returns the process logger per the log section of the configuration, its level in level.
func newLogger(c config.Log, level *slog.LevelVar, w io.Writer) *slog.Logger {
	level.Set(parseLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadLocal parses the flags of a command that works on the data directory itself rather than through the
// API (rename-node, dkim rekey): --config and serve's overrides, and those extra declares; it loads the
// configuration the way serve does. When done is true the command must exit with code.
func loadLocal(name string, args []string, extra func(*flag.FlagSet), stdout, stderr io.Writer) (cfg config.Config, code int, done bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sf serveFlags
	sf.register(fs)
	if extra != nil {
		extra(fs)
	}
	ignoreGlobals(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		commandByName(name).printUsage(stdout, fs)
		return cfg, 0, true
	} else if err != nil {
		return cfg, report(stderr, name, usagef("%v", err)), true
	}
	if fs.NArg() > 0 {
		return cfg, report(stderr, name, usagef("takes no arguments, got %q", strings.Join(fs.Args(), " "))), true
	}
	_, cfg, err := sf.load()
	if err != nil {
		fmt.Fprintf(stderr, "easymail %s: %v\n", name, err)
		return cfg, 1, true
	}
	return cfg, 0, false
}

// runRenameNode is `easymail rename-node [--config FILE]`: it gives the data directory the configured node_id
// on purpose (after a change of host name), moving its queue to it, while no node runs on it.
func runRenameNode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code, done := loadLocal("rename-node", args, nil, stdout, stderr)
	if done {
		return code
	}
	from, moved, err := node.RenameNode(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "easymail rename-node:", err)
		return 1
	}
	was := "(none)"
	if len(from) > 0 {
		was = strings.Join(from, ", ")
	}
	fmt.Fprintf(stdout, "data_dir %s now belongs to node %q (was %s); %d message rows moved. Start easymail serve with this configuration.\n",
		cfg.DataDir, cfg.NodeID, was, moved)
	return 0
}

// renameNodeHelp is rename-node's help text.
const renameNodeHelp = `Gives the data directory the node_id of the configuration (by default the host name) on purpose, after ` +
	`the host was renamed: the queue and the message log move to that id and <data_dir>/node-id is rewritten. ` +
	`Run it with easymail stopped (it takes the data directory's lock), then start easymail serve with the same ` +
	`configuration.`
