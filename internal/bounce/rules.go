package bounce

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed rules.yaml
var embeddedRules []byte

// Classifier classifies failures with an ordered list of rules: the first rule that matches gives the class,
// and a failure no rule matches is Other. A Classifier is immutable and safe for concurrent use.
type Classifier struct {
	rules []rule
}

// rule is one parsed rule. Every condition present must match.
type rule struct {
	class    Class
	codes    []codePattern
	enhanced []enhancedPattern
	text     *regexp.Regexp
}

// codePattern is a reply code with "x" for any digit: "550", "55x", "5xx". -1 is a wildcard digit.
type codePattern [3]int

// enhancedPattern is an enhanced status code with -1 for "x", any value: "5.1.1", "x.1.1", "5.7.x".
type enhancedPattern [3]int

// ruleFile is a rule as written in YAML.
type ruleFile struct {
	Class    string   `yaml:"class"`
	Code     []string `yaml:"code"`
	Enhanced []string `yaml:"enhanced"`
	Text     []string `yaml:"text"`
}

// Parse reads a rule table: a YAML list of rules, each with a class and at least one of code (a list of
// reply code patterns such as "550" or "5xx"), enhanced (a list of enhanced status code patterns such as
// "5.1.1" or "x.7.x") and text (a list of RE2 regular expressions searched in the reply text without regard to
// case). Within a list, any pattern may match; across conditions, all must.
func Parse(data []byte) (*Classifier, error) {
	return ParseClasses(data, Classes())
}

// ParseClasses is Parse for a rule table of other classes than the bounce classes (the delivery's throttling
// rules): every rule's class must be one of classes, and a failure no rule matches is still Other.
func ParseClasses(data []byte, classes []string) (*Classifier, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var file []ruleFile
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("bounce rules: %w", err)
	}
	if len(file) == 0 {
		return nil, errors.New("bounce rules: no rules")
	}
	c := &Classifier{}
	for i, f := range file {
		r, err := f.compile(classes)
		if err != nil {
			return nil, fmt.Errorf("bounce rules: rule %d (%s): %w", i+1, f.Class, err)
		}
		c.rules = append(c.rules, r)
	}
	return c, nil
}

func mustParse(data []byte) *Classifier {
	c, err := Parse(data)
	if err != nil {
		panic(err)
	}
	return c
}

func (f ruleFile) compile(classes []string) (rule, error) {
	if !slices.Contains(classes, f.Class) {
		return rule{}, fmt.Errorf("class %q is not one of %s", f.Class, strings.Join(classes, ", "))
	}
	r := rule{class: f.Class}
	for _, s := range f.Code {
		p, err := parseCodePattern(s)
		if err != nil {
			return rule{}, err
		}
		r.codes = append(r.codes, p)
	}
	for _, s := range f.Enhanced {
		p, err := parseEnhancedPattern(s)
		if err != nil {
			return rule{}, err
		}
		r.enhanced = append(r.enhanced, p)
	}
	if len(f.Text) > 0 {
		alts := make([]string, len(f.Text))
		for i, t := range f.Text {
			if t == "" {
				return rule{}, errors.New("text: an empty pattern would match every reply")
			}
			if _, err := regexp.Compile(t); err != nil {
				return rule{}, fmt.Errorf("text %q: %w", t, err)
			}
			alts[i] = "(?:" + t + ")"
		}
		r.text = regexp.MustCompile("(?i)" + strings.Join(alts, "|"))
	}
	if len(r.codes) == 0 && len(r.enhanced) == 0 && r.text == nil {
		return rule{}, errors.New("a rule needs code, enhanced or text")
	}
	return r, nil
}

func parseCodePattern(s string) (codePattern, error) {
	var p codePattern
	if len(s) != 3 {
		return p, fmt.Errorf("code %q: want three digits or x, like 550 or 5xx", s)
	}
	for i := 0; i < 3; i++ {
		switch c := s[i]; {
		case c == 'x' || c == 'X':
			p[i] = -1
		case c >= '0' && c <= '9':
			p[i] = int(c - '0')
		default:
			return p, fmt.Errorf("code %q: want three digits or x, like 550 or 5xx", s)
		}
	}
	if p[0] != -1 && (p[0] < 2 || p[0] > 5) {
		return p, fmt.Errorf("code %q: the first digit is 2 to 5", s)
	}
	return p, nil
}

func parseEnhancedPattern(s string) (enhancedPattern, error) {
	var p enhancedPattern
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return p, fmt.Errorf("enhanced %q: want class.subject.detail, like 5.1.1 or x.7.x", s)
	}
	for i, part := range parts {
		if part == "x" || part == "X" {
			p[i] = -1
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || n > 999 {
			return p, fmt.Errorf("enhanced %q: want class.subject.detail, like 5.1.1 or x.7.x", s)
		}
		p[i] = n
	}
	return p, nil
}

func (p codePattern) match(code int) bool {
	d := [3]int{code / 100, code / 10 % 10, code % 10}
	for i := range p {
		if p[i] != -1 && p[i] != d[i] {
			return false
		}
	}
	return true
}

func (p enhancedPattern) match(e [3]int) bool {
	for i := range p {
		if p[i] != -1 && p[i] != e[i] {
			return false
		}
	}
	return true
}

func (r *rule) match(rp reply) bool {
	if len(r.codes) > 0 {
		ok := false
		for _, p := range r.codes {
			ok = ok || p.match(rp.code)
		}
		if !ok {
			return false
		}
	}
	if len(r.enhanced) > 0 {
		ok := false
		for _, p := range r.enhanced {
			ok = ok || p.match(rp.enhanced)
		}
		if !ok {
			return false
		}
	}
	return r.text == nil || r.text.MatchString(rp.text)
}

// Classify returns the class of the first rule matching the failure: its reply code, its enhanced status code
// ("5.1.1"; "" or "5.0.0" when the reply had none) and its text. A leading "remote host NAME said: " is not
// part of the text matched.
func (c *Classifier) Classify(code int, enhanced, text string) Class {
	rp := newReply(code, enhanced, text)
	for i := range c.rules {
		if c.rules[i].match(rp) {
			return c.rules[i].class
		}
	}
	return Other
}
