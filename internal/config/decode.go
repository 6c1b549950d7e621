package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	suggestpkg "easymail/internal/suggest"
)

// The decoder reads a YAML document through its node tree rather than with yaml.Unmarshal, so that every
// error names the YAML path of the value at fault (smtp.listen[0]) and its line, an unknown key comes with
// the closest known one, and durations and sizes accept the units people write (5d, 50MB).
//
// Struct fields are matched by their yaml tag. A field tagged unit:"bytes" is a size; a time.Duration is a
// duration. Types with an UnmarshalYAML method (RBLZone) decode themselves.

// maxNodes bounds the nodes visited in one document, aliases expanded: a document of aliases of aliases
// (a "billion laughs") is refused rather than walked.
const maxNodes = 200000

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

type decoder struct {
	// lines maps the YAML path of every key read to its line, so that validation errors found later can
	// name the line too.
	lines map[string]int
	nodes int
}

// parse decodes YAML b over c and returns the line of every key it read.
func parse(b []byte, c *Config) (map[string]int, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]int{}, nil // an empty document leaves the defaults
		}
		return nil, syntaxError(err)
	}
	d := &decoder{lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return d.lines, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return d.lines, nil
	}
	if err := d.value(root, reflect.ValueOf(c).Elem(), "", ""); err != nil {
		return nil, err
	}
	return d.lines, nil
}

// syntaxError turns a yaml.v3 syntax error ("yaml: line 3: mapping values are not allowed in this
// context") into a KeyError with its line.
func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimPrefix(msg, m[0])
	}
	return &KeyError{Key: "(syntax)", Line: line, Msg: "not valid YAML: " + msg}
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) error {
	if path == "" {
		path = "(top level)"
	}
	return &KeyError{Key: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// value decodes n into v; path is n's YAML path and unit the field's unit tag.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path, unit string) error {
	if d.nodes++; d.nodes > maxNodes {
		return d.fail(n, path, "the document expands to more than %d values (aliases of aliases?)", maxNodes)
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return d.fail(n, path, "unknown alias")
		}
		return d.value(n.Alias, v, path, unit)
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return d.fail(n, path, "%s", lineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), ""))
		}
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if v.Type() == durationType {
		return d.duration(n, v, path)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.value(n, v.Elem(), path, unit)
	case reflect.Struct:
		return d.mapping(n, v, path)
	case reflect.Slice:
		return d.sequence(n, v, path, unit)
	case reflect.Map:
		return d.dict(n, v, path, unit)
	}
	if n.Kind != yaml.ScalarNode {
		return d.fail(n, path, "must be %s, not a %s", kindName(v.Type(), unit), nodeKind(n))
	}
	s := strings.TrimSpace(n.Value)
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			return d.fail(n, path, "%q is not a boolean: write true or false", n.Value)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if unit == "bytes" {
			size, err := ParseSize(s)
			if err != nil {
				return d.fail(n, path, "%v", err)
			}
			if v.OverflowInt(size) {
				return d.fail(n, path, "%q is too large", n.Value)
			}
			v.SetInt(size)
			return nil
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil || v.OverflowInt(i) {
			if errors.Is(err, strconv.ErrRange) || err == nil {
				return d.fail(n, path, "%q is too large", n.Value)
			}
			return d.fail(n, path, "%q is not a whole number", n.Value)
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil {
			return d.fail(n, path, "%q is not a number", n.Value)
		}
		v.SetFloat(f)
	default:
		return d.fail(n, path, "cannot hold a %s value", v.Kind())
	}
	return nil
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return d.fail(n, path, "must be a duration such as 90s, 10m, 4h or 5d, not a %s", nodeKind(n))
	}
	dur, err := ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return d.fail(n, path, "%v", err)
	}
	v.SetInt(int64(dur))
	return nil
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.fail(n, path, "must be a mapping (key: value lines), not a %s", nodeKind(n))
	}
	t := v.Type()
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			return d.fail(k, path, "a key must be a plain name, not a %s", nodeKind(k))
		}
		if k.Value == "<<" {
			return d.fail(k, key, "merge keys (<<) are not supported; write the keys out")
		}
		if seen[k.Value] {
			return d.fail(k, key, "is set twice in the same mapping (the first is on line %d)", d.lines[key])
		}
		seen[k.Value] = true
		idx, ok := fieldIndex(t, k.Value)
		if !ok {
			return d.fail(k, key, "unknown key%s", suggest(t, path, k.Value))
		}
		d.lines[key] = k.Line
		f := t.FieldByIndex(idx)
		if err := d.value(val, v.FieldByIndex(idx), key, f.Tag.Get("unit")); err != nil {
			return err
		}
	}
	return nil
}

// dict decodes a mapping whose keys are names chosen by the file (sla_types, tls_policies) into a map with
// string keys. As yaml.v3 does, the keys written are added to those already there (the defaults), each
// value decoded afresh.
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path, unit string) error {
	if n.Kind != yaml.MappingNode {
		return d.fail(n, path, "must be a mapping (name: value lines), not a %s", nodeKind(n))
	}
	if v.Type().Key().Kind() != reflect.String {
		return d.fail(n, path, "cannot hold a map with %s keys", v.Type().Key().Kind())
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return d.fail(k, path, "a key must be a plain name, not a %s", nodeKind(k))
		}
		key := join(path, k.Value)
		if seen[k.Value] {
			return d.fail(k, key, "is set twice in the same mapping (the first is on line %d)", d.lines[key])
		}
		seen[k.Value] = true
		d.lines[key] = k.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		if err := d.value(val, elem, key, unit); err != nil {
			return err
		}
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
	return nil
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path, unit string) error {
	items := n.Content
	switch {
	case n.Kind == yaml.ScalarNode && isScalarKind(v.Type().Elem()):
		// "listen: 127.0.0.1:25" is a list of one.
		items = []*yaml.Node{n}
	case n.Kind != yaml.SequenceNode:
		return d.fail(n, path, "must be a list ([a, b] or lines starting with -), not a %s", nodeKind(n))
	}
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		key := fmt.Sprintf("%s[%d]", path, i)
		d.lines[key] = item.Line
		if err := d.value(item, out.Index(i), key, unit); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

func isScalarKind(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Int, reflect.Int64, reflect.Float64, reflect.Bool:
		return true
	}
	return false
}

// yamlField is a key of a struct type: its name, and the index of its field, the fields of inline structs
// (`yaml:",inline"`) flattened into their parent as yaml.v3 does.
type yamlField struct {
	name  string
	index []int
	field reflect.StructField
}

// yamlFields lists the keys of struct type t.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if _, opts, _ := strings.Cut(f.Tag.Get("yaml"), ","); slices.Contains(strings.Split(opts, ","), "inline") &&
			f.Type.Kind() == reflect.Struct {
			for _, sub := range yamlFields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name := yamlName(f); name != "" {
			out = append(out, yamlField{name: name, index: []int{i}, field: f})
		}
	}
	return out
}

// fieldIndex finds the field of struct type t whose yaml tag is name.
func fieldIndex(t reflect.Type, name string) ([]int, bool) {
	for _, f := range yamlFields(t) {
		if f.name == name {
			return f.index, true
		}
	}
	return nil, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return fmt.Sprintf("value (%q)", n.Value)
}

func kindName(t reflect.Type, unit string) string {
	switch {
	case unit == "bytes":
		return "a size such as 52428800, 50MB or 50MiB"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a whole number"
}

// suggest returns "; did you mean PATH?" for the known key closest to key: among the keys of t first, then
// among all the keys of the file (a key written at the wrong level: max_message_size at the top instead of
// under smtp); else the keys allowed at path.
func suggest(t reflect.Type, path, key string) string {
	var here []string
	for _, f := range yamlFields(t) {
		here = append(here, f.name)
	}
	key = strings.ToLower(key)
	if best, ok := suggestpkg.Closest(key, here); ok {
		return "; did you mean " + join(path, best) + "?"
	}
	var paths, leaves []string
	knownPaths(reflect.TypeOf(Config{}), "", &paths)
	for _, p := range paths {
		leaves = append(leaves, p[strings.LastIndexByte(p, '.')+1:])
	}
	if best, ok := suggestpkg.Closest(key, leaves); ok {
		return "; did you mean " + paths[slices.Index(leaves, best)] + "?"
	}
	sort.Strings(here)
	where := "here"
	if path != "" {
		where = "in " + path
	}
	return fmt.Sprintf(" (the keys %s are %s)", where, strings.Join(here, ", "))
}

// knownPaths lists the YAML paths of every key of t ("smtp.max_message_size", "pools[].ips[].address").
func knownPaths(t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		switch t.Kind() {
		case reflect.Slice:
			path += "[]"
		case reflect.Map:
			path += ".*"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType {
		return
	}
	for _, f := range yamlFields(t) {
		p := join(path, f.name)
		*out = append(*out, p)
		knownPaths(f.field.Type, p, out)
	}
}

// durationUnits are the units ParseDuration accepts, with their length.
var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "ms": time.Millisecond,
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

var durationPart = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*(ns|us|µs|ms|s|m|h|d|w)`)

// ParseDuration reads a duration: Go's form (90s, 1h30m) with the units d (24h) and w (7d) besides, such as
// 5d or 1d12h, and 0 without a unit.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration: write a number and a unit (ms, s, m, h, d for days, w for weeks), e.g. 90s, 10m, 4h, 5d or 1d12h", s)
	if s == "0" {
		return 0, nil
	}
	rest, neg := s, false
	if strings.HasPrefix(rest, "-") {
		rest, neg = rest[1:], true
	}
	if rest == "" {
		return 0, bad
	}
	var total float64
	for rest != "" {
		m := durationPart.FindStringSubmatch(rest)
		if m == nil {
			return 0, bad
		}
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, bad
		}
		total += n * float64(durationUnits[m[2]])
		rest = strings.TrimLeft(rest[len(m[0]):], " ")
	}
	if total > float64(1<<62) {
		return 0, fmt.Errorf("%q is too long a duration", s)
	}
	if neg {
		total = -total
	}
	return time.Duration(total), nil
}

// FormatDuration writes d as ParseDuration reads it, in whole days when it is whole days ("5d"), else in
// Go's form without zero units ("1h", "1h30m", "90s" as "1m30s").
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
}

var sizeRE = regexp.MustCompile(`^([0-9][0-9_]*(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// ParseSize reads a size in bytes: a number, with an optional unit: B, KB, MB, GB (powers of 1000),
// KiB, MiB, GiB or K, M, G (powers of 1024), in any case: 52428800, 50MiB, 50MB, 100k.
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: write a number of bytes with an optional unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 52428800, 50MB or 50MiB", s)
	}
	mult, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q: unknown size unit %q (write B, KB, MB, GB, KiB, MiB or GiB)", s, m[2])
	}
	n, err := strconv.ParseFloat(strings.ReplaceAll(m[1], "_", ""), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	v := n * float64(mult)
	if v > float64(1<<62) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if v != float64(int64(v)) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return int64(v), nil
}

// FormatSize writes n bytes as ParseSize reads it: in GiB, MiB or KiB when it is a whole number of them.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
