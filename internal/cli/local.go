package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"easymail/internal/config"
)

// localCommands are the commands that work without the API: serve, config, completion, man, version.
func localCommands() []*command {
	return []*command{
		{name: "serve", args: "[--config FILE] [--smtp-listen ADDR,...] [--api-listen ADDR] [--data-dir DIR] [--hostname NAME]",
			summary: "run the relay", direct: runServe, usage: printServeUsage},
		{name: "config check", args: "[--config FILE] [--changed] [serve's flags]",
			summary: "validate the configuration and print it with the defaults filled in, secrets masked",
			help: "Finds the file as serve does and applies the same flags and environment. Exit status 0 when the " +
				"configuration is valid (printed on standard output), 1 when it is not (the error, naming the file, " +
				"line and key, on standard error). With --changed it prints only the keys whose values differ from the " +
				"built-in defaults, one \"key = value\" line each (as postconf -n).",
			direct: runConfigCheck},
		{name: "config default", summary: "print the commented sample configuration (the package's /etc/easymail/easymail.yaml)",
			direct: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
				if code, done := noArgs("config default", args, stdout, stderr); done {
					return code
				}
				stdout.Write(config.Sample)
				return 0
			}},
		{name: "rename-node", args: "[--config FILE]", summary: "give data_dir the configured node_id (easymail stopped)",
			help: renameNodeHelp, direct: runRenameNode},
		{name: "dkim rekey", args: "--new-key-file F [--config FILE]",
			summary: "re-encrypt the DKIM private keys with a new master key (easymail stopped)",
			help:    rekeyHelp, direct: runRekey},
		{name: "completion", args: "bash|zsh|fish", nargs: 1, summary: "print the shell completion script",
			help: "bash: source <(easymail completion bash); zsh: easymail completion zsh > \"${fpath[1]}/_easymail\"; " +
				"fish: easymail completion fish > ~/.config/fish/completions/easymail.fish",
			direct: runCompletion},
		{name: "man", summary: "print the manual page (troff; `make man` writes dist/easymail.1)", direct: runMan},
		{name: "version", summary: "print the version", direct: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			if code, done := noArgs("version", args, stdout, stderr); done {
				return code
			}
			fmt.Fprintln(stdout, versionString())
			return 0
		}},
	}
}

// noArgs parses the flags of a command that takes none but --help; done is true when the command must
// return code at once.
func noArgs(name string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ignoreGlobals(fs)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandByName(name).printUsage(stdout, nil)
		return 0, true
	case err != nil:
		return report(stderr, name, usagef("%v", err)), true
	case fs.NArg() > 0:
		return report(stderr, name, usagef("takes no arguments, got %q", strings.Join(fs.Args(), " "))), true
	}
	return 0, false
}

// runConfigCheck is `easymail config check`: exit 0 and the effective configuration, or 1 and the error.
func runConfigCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sf serveFlags
	sf.register(fs)
	changed := fs.Bool("changed", false, "print only the keys that differ from the built-in defaults (postconf -n)")
	ignoreGlobals(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		commandByName("config check").printUsage(stdout, fs)
		return 0
	} else if err != nil {
		return report(stderr, "config check", usagef("%v", err))
	}
	if fs.NArg() > 0 {
		return report(stderr, "config check", usagef("takes no arguments, got %q", strings.Join(fs.Args(), " ")))
	}
	if sf.config != "" {
		if _, err := os.Stat(sf.config); err != nil {
			fmt.Fprintf(stderr, "easymail config check: %v\n", err)
			return 1
		}
	}
	file, cfg, err := sf.load()
	if err != nil {
		fmt.Fprintf(stderr, "easymail config check: %v\n", err)
		return 1
	}
	if *changed {
		base, err := config.LoadWith("", config.Overrides{})
		if err != nil {
			fmt.Fprintf(stderr, "easymail config check: the built-in defaults: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "# %s: valid. The keys that differ from the built-in defaults:\n",
			firstNonEmpty(file, "no configuration file (embedded defaults)"))
		for _, l := range cfg.NonDefault(base) {
			fmt.Fprintln(stdout, l)
		}
		return 0
	}
	out, err := cfg.Effective()
	if err != nil {
		fmt.Fprintf(stderr, "easymail config check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "# %s: valid. The effective configuration, defaults filled in, secrets masked:\n",
		firstNonEmpty(file, "no configuration file (embedded defaults)"))
	stdout.Write(out)
	return 0
}

// ignoreGlobals accepts, and ignores, the global flags of the client commands that fs does not define, so
// that "easymail --api URL version" works as any client command does.
func ignoreGlobals(fs *flag.FlagSet) {
	for _, name := range []string{"api", "token", "config"} {
		if fs.Lookup(name) == nil {
			fs.String(name, "", "(ignored: a flag of the client commands)")
		}
	}
	if fs.Lookup("json") == nil {
		fs.Bool("json", false, "(ignored: a flag of the client commands)")
	}
}
