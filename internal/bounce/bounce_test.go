package bounce

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type sample struct {
	line     int
	class    Class
	code     int
	enhanced string // "" when the reply has none
	text     string
	raw      string
}

var replyLine = regexp.MustCompile(`^(\d{3})[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?(.*)$`)

func loadSamples(t *testing.T) []sample {
	t.Helper()
	f, err := os.Open("testdata/replies.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		class, rep, ok := strings.Cut(line, "\t")
		if !ok || !IsClass(class) {
			t.Fatalf("testdata line %d: want CLASS<tab>REPLY with a known class: %q", n, line)
		}
		m := replyLine.FindStringSubmatch(rep)
		if m == nil {
			t.Fatalf("testdata line %d: reply does not start with a code: %q", n, rep)
		}
		code, _ := strconv.Atoi(m[1])
		out = append(out, sample{line: n, class: class, code: code, enhanced: m[2], text: m[3], raw: rep})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealWorldReplies classifies the replies of testdata/replies.txt as the queue records them: the code,
// the enhanced code (the class followed by .0.0 when the receiver sent none) and "remote host NAME said: "
// followed by the whole reply; and also with the bare text.
func TestRealWorldReplies(t *testing.T) {
	samples := loadSamples(t)
	if len(samples) < 50 {
		t.Fatalf("only %d samples; the table should hold at least 50", len(samples))
	}
	seen := map[Class]int{}
	for _, s := range samples {
		enh := s.enhanced
		if enh == "" {
			enh = fmt.Sprintf("%d.0.0", s.code/100)
		}
		stored := "remote host mx.dest.example said: " + s.raw
		if got := Classify(s.code, enh, stored); got != s.class {
			t.Errorf("line %d: %q\n  classified %s, want %s", s.line, s.raw, got, s.class)
		}
		if got := Classify(s.code, s.enhanced, s.text); got != s.class {
			t.Errorf("line %d (bare text): %q\n  classified %s, want %s", s.line, s.text, got, s.class)
		}
		seen[s.class]++
	}
	for _, c := range Classes() {
		if seen[c] == 0 {
			t.Errorf("no sample of class %s", c)
		}
	}
}

func TestEnhancedCodeFallbacks(t *testing.T) {
	for _, c := range []struct {
		code     int
		enhanced string
		want     Class
	}{
		{550, "5.1.1", BadMailbox},
		{550, "5.1.6", BadMailbox},
		{550, "5.2.1", BadMailbox},
		{450, "4.2.1", Other}, // a temporary x.2.1 is no disabled mailbox
		{550, "5.1.2", BadDomain},
		{556, "5.1.10", BadDomain},
		{552, "5.2.2", MailboxFull},
		{452, "4.2.2", MailboxFull},
		{552, "5.3.4", Policy},
		{550, "5.7.1", Policy},
		{451, "4.4.3", DNS},
		{451, "4.4.1", Timeout},
		{451, "4.7.5", TLS},
		{550, "5.1.8", Policy},
		{554, "5.6.0", Other},
		{550, "", Other},
		{0, "", Other},
	} {
		if got := Classify(c.code, c.enhanced, "no words that mean anything here"); got != c.want {
			t.Errorf("%d %s: %s, want %s", c.code, c.enhanced, got, c.want)
		}
	}
}

func TestEnhancedCodeFromText(t *testing.T) {
	// qmail writes the enhanced code at the end, in parentheses.
	if got := Classify(553, "5.0.0", "remote host mx.q.example said: 553 sorry, nothing to see (#5.1.1)"); got != BadMailbox {
		t.Fatalf("qmail enhanced code: %s", got)
	}
	// The host name in our prefix is not matched: a host named after a block list says nothing.
	if got := Classify(550, "5.1.1", "remote host mx.spamhaus-timeout.example said: 550 5.1.1 gone"); got != BadMailbox {
		t.Fatalf("host name matched: %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"", "no rules"},
		{"- class: nope\n  code: [550]\n", `class "nope"`},
		{"- class: spam\n", "needs code, enhanced or text"},
		{"- class: spam\n  code: ['5x']\n", `code "5x"`},
		{"- class: spam\n  code: ['650']\n", "first digit"},
		{"- class: spam\n  enhanced: ['5.1']\n", `enhanced "5.1"`},
		{"- class: spam\n  enhanced: ['5.y.1']\n", `enhanced "5.y.1"`},
		{"- class: spam\n  text: ['(']\n", "text"},
		{"- class: spam\n  text: ['']\n", "empty pattern"},
		{"- class: spam\n  texts: ['a']\n", "texts"},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.yaml, err, c.want)
		}
	}
}

func TestRuleOrderAndConditions(t *testing.T) {
	c, err := Parse([]byte(`
- class: spam
  code: [5xx]
  enhanced: [x.7.x]
  text: [junk]
- class: policy
  enhanced: [5.7.1]
- class: timeout
  code: [4x1]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		code     int
		enhanced string
		text     string
		want     Class
	}{
		{550, "5.7.1", "this is junk", Spam},
		{450, "4.7.1", "this is junk", Other}, // code 4xx: the spam rule needs 5xx
		{550, "5.7.1", "clean", Policy},
		{451, "4.3.0", "", Timeout},
		{421, "4.3.0", "", Timeout},
		{450, "4.3.0", "", Other},
	} {
		if got := c.Classify(k.code, k.enhanced, k.text); got != k.want {
			t.Errorf("%d %s %q: %s, want %s", k.code, k.enhanced, k.text, got, k.want)
		}
	}
}

func TestDefaultRulesParse(t *testing.T) {
	if _, err := Parse(embeddedRules); err != nil {
		t.Fatal(err)
	}
	if Default() == nil || len(Default().rules) < 10 {
		t.Fatal("default rules missing")
	}
}
