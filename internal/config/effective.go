package config

import (
	_ "embed"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Sample is the commented sample configuration: `easymail config default` prints it and the Debian package
// installs it as /etc/easymail/easymail.yaml. Every key is there with its default (or commented out with
// it); LoadWith accepts it as it is.
//
//go:embed easymail.yaml
var Sample []byte

// Mask replaces a secret shown by Effective.
const Mask = "********"

// Effective returns c as YAML, every key with its value (the defaults filled in), durations and sizes in
// units, secrets masked: the password of URLs (database, scan.rspamd) as "xxxxx" and keys tagged secret:"true". Read
// back, it gives c again (but for the masked secrets).
func (c Config) Effective() ([]byte, error) {
	// Values whose zero means a default are shown as that default.
	if c.DKIM.Sign == nil {
		sign := c.DKIM.Signing()
		c.DKIM.Sign = &sign
	}
	zones := make([]RBLZone, len(c.RBL.Zones))
	for i, z := range c.RBL.Zones {
		zones[i] = RBLZone{Zone: z.Zone, Refused: z.RefusedAnswers()}
	}
	c.RBL.Zones = zones
	n := encode(reflect.ValueOf(c), "", "")
	return yaml.Marshal(n)
}

// encode turns v into a YAML node, secrets masked; unit and secret are the field's tags.
func encode(v reflect.Value, unit, secret string) *yaml.Node {
	return encodeMasked(v, unit, secret, true)
}

// encodeMasked is encode, with the secrets shown as they are unless mask.
func encodeMasked(v reflect.Value, unit, secret string, mask bool) *yaml.Node {
	scalar := func(s string, tag string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
	}
	if v.Type() == durationType {
		return scalar(FormatDuration(time.Duration(v.Int())), "!!str")
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return scalar("null", "!!null")
		}
		return encodeMasked(v.Elem(), unit, secret, mask)
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range yamlFields(v.Type()) {
			n.Content = append(n.Content, scalar(f.name, "!!str"),
				encodeMasked(v.FieldByIndex(f.index), f.field.Tag.Get("unit"), f.field.Tag.Get("secret"), mask))
		}
		return n
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			n.Content = append(n.Content, scalar(k.String(), "!!str"), encodeMasked(v.MapIndex(k), unit, secret, mask))
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if isScalarKind(v.Type().Elem()) || v.Type().Elem() == durationType {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			n.Content = append(n.Content, encodeMasked(v.Index(i), unit, secret, mask))
		}
		return n
	case reflect.String:
		if !mask {
			return scalar(v.String(), "!!str")
		}
		return scalar(maskSecret(v.String(), secret), "!!str")
	case reflect.Bool:
		return scalar(strconv.FormatBool(v.Bool()), "")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if unit == "bytes" {
			return scalar(FormatSize(v.Int()), "")
		}
		return scalar(strconv.FormatInt(v.Int(), 10), "")
	case reflect.Float32, reflect.Float64:
		return scalar(strconv.FormatFloat(v.Float(), 'g', -1, 64), "")
	}
	return scalar("", "!!str")
}

// maskSecret hides s when its field is a secret: all of it (secret:"true"), or the password of a URL
// (secret:"url").
func maskSecret(s, secret string) string {
	if s == "" {
		return s
	}
	switch secret {
	case "true":
		return Mask
	case "url":
		u, err := url.Parse(s)
		if err != nil {
			return Mask
		}
		return u.Redacted() // the password as "xxxxx"
	}
	return s
}

// Changed returns the YAML paths of the keys whose values differ between a and b (whole lists count as one
// key: "delivery.retry", "pools").
func Changed(a, b Config) []string {
	fa, fb := map[string]string{}, map[string]string{}
	// Unmasked: a changed secret is a change.
	flatten(encodeMasked(reflect.ValueOf(a), "", "", false), "", fa)
	flatten(encodeMasked(reflect.ValueOf(b), "", "", false), "", fb)
	var out []string
	for k, v := range fa {
		if fb[k] != v {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func flatten(n *yaml.Node, path string, out map[string]string) {
	if n.Kind != yaml.MappingNode {
		b, _ := yaml.Marshal(n)
		out[path] = string(b)
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		flatten(n.Content[i+1], join(path, n.Content[i].Value), out)
	}
}

// NonDefault lists, as "path = value" lines sorted by path, the keys of c whose effective values differ from
// those of base (the configuration of no file: postconf -n), secrets masked as in Effective. A list, or a
// mapping inside a list, is one key, written in YAML's flow style on one line.
func (c Config) NonDefault(base Config) []string {
	fc, fb := map[string]*yaml.Node{}, map[string]*yaml.Node{}
	flattenNodes(encode(reflect.ValueOf(c), "", ""), "", fc)
	flattenNodes(encode(reflect.ValueOf(base), "", ""), "", fb)
	var out []string
	for k, n := range fc {
		if b, ok := fb[k]; ok && oneLine(b) == oneLine(n) {
			continue
		}
		out = append(out, k+" = "+oneLine(n))
	}
	slices.Sort(out)
	return out
}

func flattenNodes(n *yaml.Node, path string, out map[string]*yaml.Node) {
	if n.Kind != yaml.MappingNode {
		out[path] = n
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		flattenNodes(n.Content[i+1], join(path, n.Content[i].Value), out)
	}
}

// oneLine writes n in YAML's flow style, on one line.
func oneLine(n *yaml.Node) string {
	var flow func(*yaml.Node)
	flow = func(n *yaml.Node) {
		if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
			n.Style = yaml.FlowStyle
		}
		for _, c := range n.Content {
			flow(c)
		}
	}
	flow(n)
	b, err := yaml.Marshal(n)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
