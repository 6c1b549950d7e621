package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"easymail/internal/config"
	"easymail/internal/node"
)

// runServe is `easymail serve [--config FILE]`: it runs the relay until SIGINT or SIGTERM.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := loadConfigArgs("serve", "usage: easymail serve [--config FILE]",
		"configuration file (YAML); without it the embedded defaults apply", args, stderr)
	if !ok {
		return code
	}
	log := newLogger(cfg.Log, stderr)
	if err := node.Run(ctx, cfg, log, nil); err != nil {
		log.Error("easymail stopped with an error", "err", err)
		return 1
	}
	return 0
}

// loadConfigArgs parses the arguments of a command whose only flag is --config and loads that
// configuration. When ok is false the command exits with code (usage or configuration error, reported).
func loadConfigArgs(name, usage, configHelp string, args []string, stderr io.Writer) (cfg config.Config, code int, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", configHelp)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, 2, false
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return cfg, 2, false
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cfg, 1, false
	}
	return cfg, 0, true
}

// newLogger returns the process logger per the log section of the configuration.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runRenameNode is `easymail rename-node [--config FILE]`: it gives the data directory the configured node_id
// on purpose (after a change of host name), moving its queue to it, while no node runs on it.
func runRenameNode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := loadConfigArgs("rename-node", renameNodeUsage,
		"configuration file (YAML) of the node; without it the embedded defaults apply", args, stderr)
	if !ok {
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

const renameNodeUsage = `usage: easymail rename-node [--config FILE]

Gives the data directory the node_id of the configuration (by default the host name) on purpose, after the
host was renamed: the queue and the message log move to that id and <data_dir>/node-id is rewritten. Run it
with easymail stopped (it takes the data directory's lock), then start easymail serve with the same
configuration.`
