package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"easymail/internal/suggest"
)

// didYouMean returns ` (did you mean "easymail X"?)` for the command or group closest to name, or "".
func didYouMean(name string) string {
	var known []string
	seen := map[string]bool{}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		for n := 1; n <= len(words); n++ {
			if w := strings.Join(words[:n], " "); !seen[w] {
				seen[w] = true
				known = append(known, w)
			}
		}
	}
	known = append(known, "help")
	if best, ok := suggest.Closest(name, known); ok {
		return fmt.Sprintf(" (did you mean \"easymail %s\"?)", best)
	}
	// "queue lst extra": the closest to the first words.
	words := strings.Fields(name)
	for n := len(words) - 1; n > 0; n-- {
		if best, ok := suggest.Closest(strings.Join(words[:n], " "), known); ok {
			return fmt.Sprintf(" (did you mean \"easymail %s\"?)", best)
		}
	}
	return ""
}

// flagNames returns the flags of c, and the global flags of the client commands.
func flagNames(c *command) []string {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	switch {
	case c.setup != nil:
		fs, _, _ = c.flagSet()
	case c.name == "serve" || c.name == "config check":
		var sf serveFlags
		sf.register(fs)
	}
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
	return append(out, "--help")
}

// complete is the hidden command `easymail __complete WORD... CURRENT` behind the completion scripts: it
// prints the words that may follow, one a line: subcommands, or the flags of the command when CURRENT starts
// with "-".
func complete(args []string, w io.Writer) int {
	cur := ""
	if len(args) > 0 {
		cur, args = args[len(args)-1], args[:len(args)-1]
	}
	words := commandWords(args)
	var out []string
	c, rest := lookup(words)
	switch {
	case strings.HasPrefix(cur, "-"):
		if c != nil {
			out = flagNames(c)
		} else {
			out = []string{"--api", "--token", "--config", "--json", "--help", "--version"}
		}
	case c != nil && c.name == "completion" && len(rest) == 0:
		out = []string{"bash", "zsh", "fish"}
	case c == nil && len(rest) == 0:
		prefix := strings.Join(words, " ")
		seen := map[string]bool{}
		if prefix == "" {
			out = append(out, "help")
		}
		for _, cmd := range commands() {
			name := cmd.name
			if prefix != "" {
				if !strings.HasPrefix(name, prefix+" ") {
					continue
				}
				name = strings.TrimPrefix(name, prefix+" ")
			}
			next, _, _ := strings.Cut(name, " ")
			if !seen[next] {
				seen[next] = true
				out = append(out, next)
			}
		}
	case c == nil && len(words) == 1 && words[0] == "help":
		return complete([]string{cur}, w)
	}
	sort.Strings(out)
	for _, s := range out {
		if strings.HasPrefix(s, cur) {
			fmt.Fprintln(w, s)
		}
	}
	return 0
}

const bashCompletion = `# bash completion for easymail: source <(easymail completion bash)
_easymail() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _easymail easymail
`

const zshCompletion = `#compdef easymail
# zsh completion for easymail: easymail completion zsh > "${fpath[1]}/_easymail"
_easymail() {
    local -a opts
    opts=(${(f)"$(${words[1]} __complete ${words[2,CURRENT-1]} "${words[CURRENT]}" 2>/dev/null)"})
    compadd -a opts
}
if [ "$funcstack[1]" = "_easymail" ]; then
    _easymail "$@"
else
    compdef _easymail easymail
fi
`

const fishCompletion = `# fish completion for easymail: easymail completion fish > ~/.config/fish/completions/easymail.fish
function __easymail_complete
    set -l tokens (commandline -opc)
    $tokens[1] __complete $tokens[2..-1] (commandline -ct) 2>/dev/null
end
complete -c easymail -f -a '(__easymail_complete)'
`

// runCompletion is `easymail completion bash|zsh|fish`.
func runCompletion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ignoreGlobals(fs)
	if err := fs.Parse(args); err == flag.ErrHelp {
		commandByName("completion").printUsage(stdout, nil)
		return 0
	} else if err != nil {
		return report(stderr, "completion", usagef("%v", err))
	}
	if fs.NArg() != 1 {
		return report(stderr, "completion", usagef("needs one argument: bash, zsh or fish"))
	}
	switch fs.Arg(0) {
	case "bash":
		fmt.Fprint(stdout, bashCompletion)
	case "zsh":
		fmt.Fprint(stdout, zshCompletion)
	case "fish":
		fmt.Fprint(stdout, fishCompletion)
	default:
		return report(stderr, "completion", usagef("unknown shell %q: bash, zsh or fish", fs.Arg(0)))
	}
	return 0
}

// runMan is `easymail man`: the manual page in troff, generated from the command table.
func runMan(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if code, done := noArgs("man", args, stdout, stderr); done {
		return code
	}
	writeMan(stdout, time.Now)
	return 0
}

// roff escapes s for a troff text line.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func writeMan(w io.Writer, now func() time.Time) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p(`.TH EASYMAIL 1 "%s" "%s" "Easymail manual"`, now().UTC().Format("2006-01-02"), roff(versionString()))
	p(".SH NAME")
	p(`easymail \- outbound mail relay (smarthost) for business customers, and its administration`)
	p(".SH SYNOPSIS")
	p(".B easymail")
	p(`.I COMMAND`)
	p(`[\fIARGS\fR] [\fB\-\-api\fR \fIURL\fR] [\fB\-\-token\fR \fIT\fR] [\fB\-\-config\fR \fIFILE\fR] [\fB\-\-json\fR]`)
	p(".SH DESCRIPTION")
	p("%s", roff("easymail serve runs the relay; the other commands administer a running relay through its REST API "+
		"(customers, queue, message log, API tokens) or work on the configuration. "+
		"easymail COMMAND --help prints a command's usage."))
	p(".SH COMMANDS")
	cmds := commands()
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		p(".TP")
		p(`.B easymail %s`, roff(c.name))
		if c.args != "" {
			p(`.I %s`, roff(c.args))
		}
		p(".br")
		text := c.summary
		if c.help != "" {
			text += ". " + c.help
		}
		p("%s", roff(text))
		if c.setup != nil {
			fs, _, _ := c.flagSet()
			var flags []string
			fs.VisitAll(func(f *flag.Flag) {
				switch f.Name {
				case "api", "token", "config", "json":
					return
				}
				flags = append(flags, `\fB\-\-`+roff(f.Name)+`\fR `+roff(f.Usage))
			})
			for _, f := range flags {
				p(".br")
				p("%s", f)
			}
		}
	}
	p(".SH GLOBAL FLAGS")
	for _, l := range strings.Split(strings.TrimSpace(globalHelp), "\n") {
		p(".br")
		p("%s", roff(l))
	}
	p(".SH ENVIRONMENT")
	for _, e := range [][2]string{
		{"EASYMAIL_CONFIG", "the configuration file, when --config is not given"},
		{"EASYMAIL_SMTP_LISTEN, EASYMAIL_API_LISTEN, EASYMAIL_DATA_DIR, EASYMAIL_HOSTNAME", "override smtp.listen, api.listen, data_dir and hostname"},
		{"EASYMAIL_API, EASYMAIL_TOKEN", "where the client commands connect, and with which token"},
		{"EASYMAIL_ADMIN_TOKEN", "the operator token stored at start; without it the first start writes one to <data_dir>/admin.token"},
	} {
		p(".TP")
		p(`.B %s`, roff(e[0]))
		p("%s", roff(e[1]))
	}
	p(".SH FILES")
	p(".TP")
	p(`.I /etc/easymail/easymail.yaml`)
	p("%s", roff("the configuration (easymail config default prints the commented sample; easymail config check validates it)"))
	p(".TP")
	p(`.I /var/lib/easymail`)
	p("%s", roff("the data directory of the package: spool, database, keys, admin.token"))
	p(".SH EXIT STATUS")
	p("%s", roff("0 done (or the thing checked is ok), 1 failed (or the thing checked is not ok), 2 usage error."))
	p(".SH SEE ALSO")
	p("%s", roff("The documentation in the source tree: README.md, docs/configuration.md, docs/operations.md, docs/api.md."))
}
