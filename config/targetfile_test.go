package config

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func pwEnv(k string) string {
	if k == "PW" {
		return "s3cretpw"
	}
	return ""
}

// TestTargetFiles loads a fleet from a directory and a file: YAML lists and
// one-per-line lists, group defaults under the target's own settings, and
// labels merged group first.
func TestTargetFiles(t *testing.T) {
	c, err := LoadFile(filepath.Join("testdata", "fleet", "dbprobe.yml"), pwEnv)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		modes    []string
		interval time.Duration
		timeout  time.Duration
		write    string
		labels   map[string]string
		origin   string
	}
	dir := filepath.Join("testdata", "fleet")
	tests := map[string]want{
		"inline": {[]string{"fresh"}, time.Second, 2 * time.Second, "", nil, ""},
		"pay-1": {[]string{"fresh", "pooled"}, 500 * time.Millisecond, 400 * time.Millisecond, "dbprobe_heartbeat",
			map[string]string{"team": "payments", "environment": "prod", "wave": "1"}, filepath.Join(dir, "targets.d", "10-payments.yaml") + ":2"},
		"pay-2": {[]string{"fresh", "pooled"}, 2 * time.Second, 400 * time.Millisecond, "dbprobe_heartbeat",
			map[string]string{"team": "payments", "environment": "staging", "wave": "1"}, filepath.Join(dir, "targets.d", "10-payments.yaml") + ":6"},
		"rep-1": {[]string{"pooled"}, time.Second, 2 * time.Second, "",
			map[string]string{"team": "reporting", "wave": "1"}, filepath.Join(dir, "targets.d", "20-reporting.list") + ":2"},
		"rep-2": {[]string{"fresh"}, time.Second, 2 * time.Second, "",
			map[string]string{"team": "reporting", "wave": "2"}, filepath.Join(dir, "targets.d", "20-reporting.list") + ":4"},
		"ledger": {[]string{"fresh", "pooled"}, 500 * time.Millisecond, 400 * time.Millisecond, "dbprobe_heartbeat",
			map[string]string{"team": "payments", "environment": "prod", "wave": "2"}, filepath.Join(dir, "wave2.list") + ":1"},
	}
	var names []string
	for i := range c.Targets {
		tg := &c.Targets[i]
		names = append(names, tg.Name)
		w, ok := tests[tg.Name]
		if !ok {
			t.Errorf("unexpected target %q", tg.Name)
			continue
		}
		var write string
		if tg.Write != nil {
			write = tg.Write.Table
		}
		if !slices.Equal(tg.Modes, w.modes) || tg.EffectiveInterval() != w.interval || tg.EffectiveTimeout() != w.timeout || write != w.write {
			t.Errorf("%s: modes %v interval %v timeout %v write %q; want %v %v %v %q", tg.Name, tg.Modes, tg.EffectiveInterval(), tg.EffectiveTimeout(), write, w.modes, w.interval, w.timeout, w.write)
		}
		if !maps.Equal(tg.EffectiveLabels(), w.labels) {
			t.Errorf("%s: labels %v; want %v", tg.Name, tg.EffectiveLabels(), w.labels)
		}
		if tg.Origin() != w.origin {
			t.Errorf("%s: origin %q; want %q", tg.Name, tg.Origin(), w.origin)
		}
		if tg.MySQL().Passwd != "s3cretpw" && tg.Name != "inline" {
			t.Errorf("%s: ${PW} not expanded in the target file", tg.Name)
		}
	}
	if want := []string{"inline", "pay-1", "pay-2", "rep-1", "rep-2", "ledger"}; !slices.Equal(names, want) {
		t.Errorf("targets %v; want %v (config first, then files in order, a directory in name order)", names, want)
	}
	if !slices.Contains(c.Secrets(), "s3cretpw") {
		t.Error("the password of file targets is not among the secrets")
	}
}

// TestTargetFileErrors: every bad entry is reported at once, by file and
// line, never quoting a password.
func TestTargetFileErrors(t *testing.T) {
	dir := filepath.Join("testdata", "fleet-bad")
	_, err := LoadFile(filepath.Join(dir, "dbprobe.yml"), noEnv)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("LoadFile = %v; want a *config.Error", err)
	}
	y, l := filepath.Join(dir, "bad.yaml"), filepath.Join(dir, "bad.list")
	for _, w := range []string{
		"groups.payments.interval: must be at least 10ms (got 1ms)",
		y + `:7: targets[1].interval: not a duration (got "soon"`,
		y + `:8: targets[2].name: "ok-1" is already the name of ` + y + ":1: targets[0]",
		y + `:14: targets[3].group: no group "billing" (groups: payments)`,
		y + `:15: targets[3].labels.bad-key: label names must match`,
		l + `:2: targets[0]: a line is "name dsn [key=value ...]" (got 1 field)`,
		l + `:4: targets[1].dsn: only tcp(host:port) addresses can be probed`,
		l + `:5: targets[2].name: "ok-1" is already the name of ` + y + ":1: targets[0]",
		l + `:5: targets[2]: "team" is not key=value`,
		`target_files[2]: cannot read "` + filepath.Join(dir, "missing.list") + `": no such file or directory`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error:\n%v\nwant it to contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), ":pw@") {
		t.Errorf("error quotes a DSN password: %v", err)
	}
}

func TestTargetFileYAMLErrors(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "fleet-bad"))
	tests := []struct{ file, want string }{
		{"syntax.yaml", filepath.Join(dir, "syntax.yaml") + ": not valid YAML: line 2"},
		{"unknown.yaml", filepath.Join(dir, "unknown.yaml") + ":4: targets[0].intervall: unknown field"},
		{"dbprobe.yml", filepath.Join(dir, "dbprobe.yml") + ":1: a target file holds a list of targets (got a mapping)"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src := "targets: [{name: x, host: db, user: probe}]\ntarget_files: [" + filepath.Join(dir, tt.file) + "]\n"
			_, err := Parse([]byte(src), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMetricLabelsChecked(t *testing.T) {
	for _, tt := range []struct{ list, want string }{
		{"[target]", `metric_labels[0]: "target" is a label dbprobe's series already have`},
		{"[team, team]", `metric_labels[1]: "team" is listed twice`},
		{"[__x]", `metric_labels[0]: must match`},
		{"[a, b, c, d, e, f, g, h, i, j, k]", "metric_labels: at most 10 names"},
	} {
		_, err := Parse([]byte("targets: [{name: x, host: db, user: probe}]\nmetric_labels: "+tt.list), noEnv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("metric_labels %s: error %v; want %q", tt.list, err, tt.want)
		}
	}
}
