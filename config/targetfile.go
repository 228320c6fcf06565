package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A target file lists targets in one of two formats, chosen by its name:
//
//   - *.yaml, *.yml: a YAML list of targets, each as in the configuration
//     file's targets (name, dsn or host..., modes, write, group, labels).
//   - anything else: one target per line, "name dsn [key=value ...]";
//     group=G picks a group, every other key=value is a label. Blank lines
//     and lines starting with # are skipped.
//
// A directory contributes its *.yaml, *.yml and *.list files in name
// order; other files (editor backups, READMEs) are not read.

// MaxMetricLabels bounds metric_labels: every allowed name is a label of
// dbprobe_target_info, and each of its values a series.
const MaxMetricLabels = 10

// reservedMetricLabels are the labels dbprobe's own series already carry.
var reservedMetricLabels = []string{"target", "mode", "observer", "instance", "job"}

// origin is where one target of a target file was written.
type origin struct {
	file  string
	index int            // position in its file's list
	lines map[string]int // field path ("targets[3].dsn") -> line
}

// locate turns a field path of the target into "file:line: path", using
// the line of the deepest part of the path the file has.
func (o *origin) locate(path string) string {
	for p := path; p != ""; {
		if n, ok := o.lines[p]; ok {
			return fmt.Sprintf("%s:%d: %s", o.file, n, path)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fmt.Sprintf("%s: %s", o.file, path)
}

// loadTargetFiles appends the targets of every target file to c.Targets.
// Relative paths are taken from base, the configuration file's directory.
func (c *Config) loadTargetFiles(base string, getenv func(string) string, x *expansion, e *errs) {
	for i, p := range c.TargetFiles {
		path := fmt.Sprintf("target_files[%d]", i)
		if p == "" {
			e.add(path, "is empty")
			continue
		}
		if !filepath.IsAbs(p) && base != "" {
			p = filepath.Join(base, p)
		}
		files, err := targetFilesIn(p)
		if err != nil {
			e.add(path, "cannot read %q: %v", p, unwrapPathErr(err))
			continue
		}
		for _, f := range files {
			c.Targets = append(c.Targets, readTargetFile(f, getenv, x, e)...)
		}
	}
}

// targetFilesIn lists path itself, or a directory's target files.
func targetFilesIn(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range ents {
		n := d.Name()
		if d.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		switch filepath.Ext(n) {
		case ".yaml", ".yml", ".list":
			out = append(out, filepath.Join(path, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

func isYAML(file string) bool {
	ext := filepath.Ext(file)
	return ext == ".yaml" || ext == ".yml"
}

// readTargetFile reads one file; its problems go to e as "file:line: ...".
func readTargetFile(file string, getenv func(string) string, x *expansion, e *errs) []Target {
	data, err := os.ReadFile(file)
	if err != nil {
		e.add(file, "cannot read: %v", unwrapPathErr(err))
		return nil
	}
	if isYAML(file) {
		return readTargetYAML(file, data, getenv, x, e)
	}
	return readTargetLines(file, data, getenv, x, e)
}

func readTargetYAML(file string, data []byte, getenv func(string) string, x *expansion, e *errs) []Target {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty list of targets is a valid (empty) wave
		}
		e.add(file, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.SequenceNode {
		e.add(fmt.Sprintf("%s:%d", file, doc.Line), "a target file holds a list of targets (got %s)", describe(doc))
		return nil
	}
	var sub errs
	lines := map[int]string{}
	expandEnv(doc, "targets", getenv, x, &sub)
	checkKnown(doc, reflect.TypeOf([]Target{}), "targets", walk{lines: lines, fromEnv: x.fromEnv}, &sub)
	at := map[string]int{}
	for n, p := range lines {
		if old, ok := at[p]; !ok || n < old {
			at[p] = n
		}
	}
	for i, item := range doc.Content {
		at[fmt.Sprintf("targets[%d]", i)] = item.Line
	}
	whole := &origin{file: file, lines: at}
	if len(sub.list) > 0 {
		for _, f := range sub.list {
			f.Path = whole.locate(f.Path)
		}
		e.list = append(e.list, sub.list...)
		return nil
	}
	var out []Target
	if err := doc.Decode(&out); err != nil {
		e.add(file, "%v", err)
		return nil
	}
	for i := range out {
		out[i].origin = &origin{file: file, index: i, lines: at}
	}
	return out
}

func readTargetLines(file string, data []byte, getenv func(string) string, x *expansion, e *errs) []Target {
	var out []Target
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := len(out)
		p := fmt.Sprintf("targets[%d]", i)
		o := &origin{file: file, index: i, lines: map[string]int{p: n}}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			e.add(o.locate(p), `a line is "name dsn [key=value ...]" (got %d field)`, len(fields))
			continue
		}
		var sub errs
		dsn, _ := expandValue(fields[1], p+".dsn", getenv, x, &sub)
		t := Target{Name: fields[0], Endpoint: Endpoint{DSN: dsn}, origin: o}
		for _, kv := range fields[2:] {
			k, v, ok := strings.Cut(kv, "=")
			switch {
			case !ok || k == "":
				sub.add(p, "%q is not key=value", kv)
			case k == "group":
				t.Group = v
			default:
				if t.Labels == nil {
					t.Labels = map[string]string{}
				}
				if _, dup := t.Labels[k]; dup {
					sub.add(p+".labels."+k, "appears twice")
				}
				t.Labels[k] = v
			}
		}
		for _, f := range sub.list {
			f.Path = o.locate(f.Path)
		}
		e.list = append(e.list, sub.list...)
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		e.add(file, "cannot read: %v", err)
	}
	return out
}

// validateGroups checks every group; the result says which are usable, so
// that a bad group is reported once, not again at every target naming it.
func (c *Config) validateGroups(e *errs) map[string]bool {
	ok := map[string]bool{}
	for name, g := range c.Groups {
		p := "groups." + name
		n := len(e.list)
		if !nameRE.MatchString(name) {
			e.add(p, "group names are 1-63 letters, digits, '.', '_' or '-'")
		}
		if g.Interval != nil {
			g.Interval.check(e, p+".interval", MinInterval, time.Hour)
		}
		if g.Timeout != nil {
			g.Timeout.check(e, p+".timeout", time.Millisecond, MaxTimeout)
		}
		checkModes(g.Modes, p, e)
		if g.Write != nil && !identRE.MatchString(g.Write.Table) {
			e.add(p+".write.table", "must be a table name, optionally schema.table (got %q)", g.Write.Table)
		}
		checkLabels(g.Labels, p+".labels", e)
		ok[name] = len(e.list) == n
	}
	return ok
}

// applyGroup fills what the target leaves unset from its group.
func (t *Target) applyGroup(c *Config, p string, groupOK map[string]bool, e *errs) {
	t.labels = t.Labels
	if t.Group == "" {
		return
	}
	g, found := c.Groups[t.Group]
	if !found {
		known := make([]string, 0, len(c.Groups))
		for k := range c.Groups {
			known = append(known, k)
		}
		sort.Strings(known)
		e.add(p+".group", "no group %q (groups: %s)", t.Group, strings.Join(known, ", "))
		return
	}
	if !groupOK[t.Group] {
		return
	}
	if len(t.Modes) == 0 {
		t.Modes = slices.Clone(g.Modes)
	}
	if t.Interval == nil {
		t.Interval = g.Interval
	}
	if t.Timeout == nil {
		t.Timeout = g.Timeout
	}
	if t.Write == nil {
		t.Write = g.Write
	}
	if len(g.Labels) > 0 {
		t.labels = make(map[string]string, len(g.Labels)+len(t.Labels))
		for k, v := range g.Labels {
			t.labels[k] = v
		}
		for k, v := range t.Labels {
			t.labels[k] = v
		}
		// The target's own list now holds the group's labels too, as it
		// holds the group's modes and interval: a reload sees a group's
		// change in every target of the group.
		t.Labels = t.labels
	}
}

// MaxLabelValue bounds a label value: labels go on every event.
const MaxLabelValue = 128

func checkLabels(labels map[string]string, p string, e *errs) {
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) {
			e.add(p+"."+k, "label names must match %s", labelKeyRE)
		}
		if len(v) > MaxLabelValue {
			e.add(p+"."+k, "at most %d bytes (got %d)", MaxLabelValue, len(v))
		}
	}
}

func (c *Config) validateMetricLabels(e *errs) {
	if len(c.MetricLabels) > MaxMetricLabels {
		e.add("metric_labels", "at most %d names: each is a label of dbprobe_target_info (got %d)", MaxMetricLabels, len(c.MetricLabels))
	}
	seen := map[string]bool{}
	for i, n := range c.MetricLabels {
		p := fmt.Sprintf("metric_labels[%d]", i)
		switch {
		case !labelKeyRE.MatchString(n) || strings.HasPrefix(n, "__"):
			e.add(p, "must match %s and not start with __ (got %q)", labelKeyRE, n)
		case slices.Contains(reservedMetricLabels, n):
			e.add(p, "%q is a label dbprobe's series already have", n)
		case seen[n]:
			e.add(p, "%q is listed twice", n)
		}
		seen[n] = true
	}
}

// EffectiveLabels are the target's labels after its group's: what events
// and the report carry. Callers must not modify the map.
func (t *Target) EffectiveLabels() map[string]string { return t.labels }

// Origin is "file:line" for a target read from a target file, "" for one
// of the configuration file.
func (t *Target) Origin() string {
	if t.origin == nil {
		return ""
	}
	return strings.TrimSuffix(t.origin.locate(fmt.Sprintf("targets[%d]", t.origin.index)), fmt.Sprintf(": targets[%d]", t.origin.index))
}
