// Package cli is Easymail's command line: `easymail serve` runs the relay, the other subcommands
// administer a running relay through its REST API (customers, queue, message log, API tokens).
//
// Client commands take the global flags --api URL, --token T, --config FILE and --json, anywhere on the
// command line. The API address and token come from the flags, else from EASYMAIL_API and EASYMAIL_TOKEN,
// else from the local configuration (api.listen, and the token in <data_dir>/admin.token). Errors go to
// stderr with exit code 1; usage errors give exit code 2.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"easymail/internal/api"
)

// Main runs the command line args (without the program name) and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	pre, args := hoistGlobals(args)
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return help(args[1:], stdout, stderr)
	case "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "__complete":
		return complete(args[1:], stdout)
	}
	c, rest := lookup(args)
	if c == nil {
		group := strings.Join(args[:len(args)-len(rest)], " ")
		if group != "" && isGroup(group) {
			if len(rest) > 0 && isHelpFlag(rest[0]) {
				printGroup(stdout, group)
				return 0
			}
			if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
				fmt.Fprintf(stderr, "easymail %s: unknown subcommand %q%s\n\n", group, rest[0], didYouMean(group+" "+rest[0]))
			} else {
				fmt.Fprintf(stderr, "easymail %s: missing subcommand\n\n", group)
			}
			printGroup(stderr, group)
		} else {
			fmt.Fprintf(stderr, "easymail: unknown command %q%s\n", strings.Join(commandWords(args), " "), didYouMean(strings.Join(commandWords(args), " ")))
			fmt.Fprintln(stderr, "run 'easymail help' for the list of commands")
		}
		return 2
	}
	return c.run(ctx, append(rest, pre...), stdout, stderr)
}

// lookup finds the command named by the longest prefix of args' words; rest are the words after it. With
// no command found, rest is what follows the longest prefix that names a group.
func lookup(args []string) (*command, []string) {
	for n := min(3, len(args)); n > 0; n-- {
		if c := commandByName(strings.Join(args[:n], " ")); c != nil {
			return c, args[n:]
		}
	}
	for n := min(2, len(args)); n > 0; n-- {
		if isGroup(strings.Join(args[:n], " ")) {
			return nil, args[n:]
		}
	}
	return nil, args
}

func commandByName(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// isGroup reports whether name is a prefix of command names ("customer", "customer domain").
func isGroup(name string) bool {
	for _, c := range commands() {
		if strings.HasPrefix(c.name, name+" ") {
			return true
		}
	}
	return false
}

func help(args []string, stdout, stderr io.Writer) int {
	args = commandWords(args)
	if len(args) == 0 {
		printUsage(stdout)
		return 0
	}
	name := strings.Join(args, " ")
	if c := commandByName(name); c != nil {
		c.printUsage(stdout, nil)
		return 0
	}
	if isGroup(name) {
		printGroup(stdout, name)
		return 0
	}
	fmt.Fprintf(stderr, "easymail help: unknown command %q%s\n", name, didYouMean(name))
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "usage: easymail COMMAND [ARGS] [--api URL] [--token T] [--config FILE] [--json]\n\nCommands:\n")
	cmds := commands()
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  help [COMMAND]\tprint help; easymail COMMAND --help too\n")
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, globalHelp)
}

const globalHelp = `
Global flags of the client commands (anywhere on the line):
  --api URL      API base URL (default: $EASYMAIL_API, else http:// + api.listen of the configuration)
  --token T      API token (default: $EASYMAIL_TOKEN, else <data_dir>/admin.token, else $EASYMAIL_ADMIN_TOKEN)
  --config FILE  configuration file for those defaults (default: $EASYMAIL_CONFIG, else
                 /etc/easymail/easymail.yaml, else ./easymail.yaml, else the embedded defaults; the
                 EASYMAIL_API_LISTEN and EASYMAIL_DATA_DIR variables apply as for serve)
  --json         print the API's JSON instead of tables

Exit status: 0 done (or the thing checked is ok), 1 failed (or the thing checked is not ok), 2 usage error.
`

func printGroup(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: easymail %s SUBCOMMAND ...\n\nSubcommands (easymail help %s SUBCOMMAND for the arguments):\n", group, group)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
		}
	}
	tw.Flush()
	fmt.Fprint(w, globalHelp)
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// report writes a failed command's error and returns its exit code.
func report(stderr io.Writer, name string, err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "easymail %s: %s\n", name, ue.msg)
		fmt.Fprintf(stderr, "run 'easymail help %s' for usage\n", name)
		return 2
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		if ae.Field != "" && !strings.HasPrefix(msg, ae.Field+":") {
			msg = ae.Field + ": " + msg
		}
		fmt.Fprintf(stderr, "easymail %s: %s (HTTP %d)\n", name, msg, ae.Status)
		return 1
	}
	fmt.Fprintf(stderr, "easymail %s: %v\n", name, err)
	return 1
}

// commandWords drops the global flags (and their values) from args, leaving the words naming a command.
func commandWords(args []string) []string {
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if (name == "api" || name == "token" || name == "config") && !hasValue {
			i++
		}
	}
	return words
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }
