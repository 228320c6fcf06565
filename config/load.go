package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dbprobe/dbprobe/internal/redact"
)

// FieldError is one problem with one field of the configuration.
type FieldError struct {
	Path string // e.g. "targets[1].interval"
	Msg  string // e.g. "must be at least 10ms (got 1ms)"
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Error lists every problem found in a configuration, so a user fixes them
// all in one go instead of one per run.
type Error struct {
	Source string // file name, when loaded from a file
	Fields []*FieldError
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		fmt.Fprintf(&b, "invalid config %s:", e.Source)
	} else {
		b.WriteString("invalid config:")
	}
	if len(e.Fields) == 1 {
		b.WriteString(" " + e.Fields[0].Error())
		return b.String()
	}
	for _, f := range e.Fields {
		b.WriteString("\n  " + f.Error())
	}
	return b.String()
}

// errs collects field errors while validating.
type errs struct{ list []*FieldError }

func (e *errs) add(path, format string, args ...any) {
	e.list = append(e.list, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err(source string) error {
	if len(e.list) == 0 {
		return nil
	}
	return &Error{Source: source, Fields: e.list}
}

// LoadFile reads, decodes and validates the configuration file at path.
// Every returned error that is the user's to fix is an *Error.
func LoadFile(path string, getenv func(string) string) (*Config, error) {
	return Load(path, getenv, Overrides{})
}

// Load is LoadFile with command-line overrides applied over the file.
func Load(path string, getenv func(string) string, ov Overrides) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Source: path, Fields: []*FieldError{{Msg: err.Error()}}}
	}
	c, err := parseWith(data, filepath.Dir(path), getenv, ov)
	var ce *Error
	if errors.As(err, &ce) {
		ce.Source = path
	}
	return c, err
}

// Parse decodes data strictly over the defaults, expands ${VAR} references
// in values from getenv, and validates the result. Its errors never quote a
// secret: the values of environment variables (a secret may land in the
// wrong field, "port: ${PW}") and of secret fields are masked in them.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	return parseWith(data, "", getenv, Overrides{})
}

// parseWith is Parse with command-line overrides applied over the file.
// Relative target_files are taken from base.
func parseWith(data []byte, base string, getenv func(string) string, ov Overrides) (*Config, error) {
	x := &expansion{fromEnv: map[*yaml.Node]bool{}}
	c, err := parse(data, base, getenv, x, ov)
	var ce *Error
	if !errors.As(err, &ce) {
		return c, err
	}
	secrets := x.values
	if c != nil {
		secrets = append(secrets, c.Secrets()...)
	}
	r := redact.New(secrets...)
	for _, f := range ce.Fields {
		f.Msg = r.String(f.Msg)
	}
	return nil, err
}

// expansion records what expandEnv did: the nodes whose value came from the
// environment, and the values it substituted.
type expansion struct {
	fromEnv map[*yaml.Node]bool
	values  []string
}

// parse is Parse before its errors are redacted; the config it returns
// with an error is partly validated, for its secrets.
func parse(data []byte, base string, getenv func(string) string, x *expansion, ov Overrides) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Fields: []*FieldError{{Msg: "the file is empty"}}}
		}
		return nil, &Error{Fields: []*FieldError{{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	var e errs
	c := Default()
	lines := map[int]string{}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{Fields: []*FieldError{{Msg: fmt.Sprintf("line %d: the top level must be a mapping of keys", doc.Line)}}}
	}
	expandEnv(doc, "", getenv, x, &e)
	checkKnown(doc, reflect.TypeOf(*c), "", walk{lines: lines, fromEnv: x.fromEnv}, &e)
	if err := e.err(""); err != nil {
		return nil, err
	}
	if err := doc.Decode(c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				e.add(pathOfLine(msg, lines), "%s", typeErrorText(msg))
			}
			return nil, e.err("")
		}
		return nil, &Error{Fields: []*FieldError{{Msg: err.Error()}}}
	}
	ov.apply(c)
	c.loadTargetFiles(base, getenv, x, &e)
	if err := c.validate(); err != nil || len(e.list) > 0 {
		// A broken line in a target file and a bad field here are fixed
		// in one go: report both.
		var ce *Error
		if errors.As(err, &ce) {
			e.list = append(e.list, ce.Fields...)
		}
		err = e.err("")
		ov.blame(err)
		return c, err
	}
	return c, nil
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

func pathOfLine(msg string, lines map[int]string) string {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(m[1])
	return lines[n]
}

// typeErrorText rewrites yaml.v3's "line 3: cannot unmarshal !!str `abc`
// into int" into "must be an integer (got "abc")".
var typeRE = regexp.MustCompile("cannot unmarshal !!(\\w+) `(.*)` into (.+)$")

func typeErrorText(msg string) string {
	m := typeRE.FindStringSubmatch(msg)
	if m == nil {
		return lineRE.ReplaceAllString(msg, "")
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"):
		want = "an integer"
	case want == "bool":
		want = "true or false"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map["), strings.HasPrefix(want, "config."):
		want = "a mapping"
	case want == "string":
		want = "a string"
	}
	return fmt.Sprintf("must be %s (got %s %q)", want, tagName(m[1]), m[2])
}

func tagName(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "seq":
		return "list"
	case "map":
		return "mapping"
	}
	return tag
}

// checkKnown walks the YAML tree beside the Go type it will be decoded into
// and reports every key the type does not have, by field path. yaml.v3's own
// KnownFields names Go types and line numbers; users think in paths. It also
// records which path each line holds, to place yaml.v3's type errors.
// walk is what checkKnown records and consults on its way down.
type walk struct {
	lines   map[int]string
	fromEnv map[*yaml.Node]bool
}

func checkKnown(n *yaml.Node, t reflect.Type, path string, w walk, e *errs) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	w.lines[n.Line] = path
	switch t.Kind() {
	case reflect.Struct:
		if _, custom := reflect.PointerTo(t).MethodByName("UnmarshalYAML"); custom {
			return
		}
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			e.add(path, "must be a mapping (got %s)", describe(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			w.lines[k.Line] = p
			if seen[k.Value] {
				e.add(p, "appears twice")
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				e.add(p, "unknown field (known: %s)", strings.Join(sortedKeys(fields), ", "))
				continue
			}
			checkKnown(v, ft, p, w, e)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" {
				return
			}
			e.add(path, "must be a list (got %s)", describe(n))
			return
		}
		for i, c := range n.Content {
			checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), w, e)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			e.add(path, "must be a mapping (got %s)", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			w.lines[n.Content[i].Line] = p
			checkKnown(n.Content[i+1], t.Elem(), p, w, e)
		}
	default:
		// A scalar: decode it alone, so a type error is reported with
		// this field's path rather than a line number.
		if n.Kind != yaml.ScalarNode {
			e.add(path, "must be a single value (got %s)", describe(n))
			return
		}
		if w.fromEnv[n] && t.Kind() != reflect.String {
			n.Tag, n.Style = "", 0
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			e.add(path, "%s", typeErrorText(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")))
		}
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if opts == "inline" {
			maps.Copy(out, yamlFields(f.Type))
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expandEnv replaces ${VAR} in every scalar value (never in keys) with the
// variable's value; "$$" stands for a literal "$", and any other "$" is an
// error: "$PW" or an unclosed "${PW" taken literally would probe with a
// wrong password without a word. Expanding after parsing keeps a secret
// full of YAML syntax (": ", "#", quotes) from changing the document's
// structure. A reference to an unset variable is an error: an empty
// password is never what the user meant. Messages give positions, never the
// value, which may be a secret.
func expandEnv(n *yaml.Node, path string, getenv func(string) string, x *expansion, e *errs) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandEnv(c, path, getenv, x, e)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(path, n.Content[i].Value), getenv, x, e)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, fmt.Sprintf("%s[%d]", path, i), getenv, x, e)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, expanded := expandValue(n.Value, path, getenv, x, e)
		n.Value = v
		// Quotes around ${VAR} are there to keep the YAML valid; the value
		// is typed by the field it lands in (a port from ${PORT} is a
		// number). An explicit !!str tag still forces a string.
		if expanded && n.Style&yaml.TaggedStyle == 0 {
			// A value from the environment is a string (a password of
			// "null" stays "null"), unless it lands in a typed field:
			// checkKnown retypes it there.
			n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
			x.fromEnv[n] = true
		}
	}
}

// expandValue expands one scalar; expanded reports whether a variable was
// used.
func expandValue(s, path string, getenv func(string) string, x *expansion, e *errs) (out string, expanded bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		at := i + 1 // 1-based, as editors count
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				e.add(path, `"${" at byte %d is not closed by "}" (write "$$" for a literal "$")`, at)
				return s, false
			}
			name := s[i+2 : i+end]
			switch {
			case name == "":
				e.add(path, `"${" at byte %d names no variable (empty braces)`, at)
			case !envNameRE.MatchString(name):
				e.add(path, `"${" at byte %d: variable names are letters, digits and _, not starting with a digit (write "$$" for a literal "$")`, at)
			default:
				v := getenv(name)
				if v == "" {
					e.add(path, "environment variable %s is not set", name)
				}
				b.WriteString(v)
				x.values = append(x.values, v)
				expanded = true
			}
			i += end
		default:
			e.add(path, `"$" at byte %d is neither "$$" (a literal "$") nor ${VAR}`, at)
		}
	}
	return b.String(), expanded
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
