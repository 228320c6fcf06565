// Package prometheus_test checks the Prometheus files shipped in
// deploy/prometheus with the real promtool, and that every alert is complete:
// labelled, annotated, documented and unit-tested both firing and silent.
package prometheus_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/promtest"
	"github.com/dbprobe/dbprobe/sink/metrics"
)

func TestPromtool(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"check config", []string{"check", "config", "--lint=all", "--lint-fatal", "prometheus.yml"}},
		{"check rules", []string{"check", "rules", "--lint=all", "--lint-fatal", "alerts.yml"}},
		{"check web-config", []string{"check", "web-config", "web-config.yml"}},
		{"test rules", []string{"test", "rules", "alerts_test.yml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := promtest.RunPromtool(t, ".", nil, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "SUCCESS") {
				t.Errorf("promtool %s printed no SUCCESS:\n%s", strings.Join(tc.args, " "), out)
			}
		})
	}
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "alerts.yml", &f)
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

const runbookBase = "https://github.com/dbprobe/dbprobe/blob/main/docs/alerts.md#"

// TestAlertsComplete: severity, summary, description, a runbook link to a
// section of docs/alerts.md that exists, and only metrics dbprobe exports.
func TestAlertsComplete(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)\s*$`).FindAllStringSubmatch(string(doc), -1) {
		headings[m[1]] = true
	}
	for _, r := range loadRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			if !strings.HasPrefix(r.Alert, "DBProbe") {
				t.Errorf("alert name %q does not start with DBProbe", r.Alert)
			}
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("severity = %q, want critical, warning or info", r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("annotation %s missing", a)
				}
			}
			if s := r.Annotations["summary"]; s != "" && !strings.HasSuffix(s, ".") {
				t.Errorf("summary %q does not end with a period", s)
			}
			if got, want := r.Annotations["runbook_url"], runbookBase+strings.ToLower(r.Alert); got != want {
				t.Errorf("runbook_url = %q, want %q", got, want)
			}
			if !headings[r.Alert] {
				t.Errorf("docs/alerts.md has no section \"## %s\"", r.Alert)
			}
			if unknown := metrics.UnknownNames(r.Expr); len(unknown) > 0 {
				t.Errorf("expr names metrics dbprobe does not export: %q", unknown)
			}
		})
	}
}

// TestEveryAlertTestedBothWays: alerts_test.yml has, for every alert, a case
// where it fires and one where it does not, on series dbprobe exports.
func TestEveryAlertTestedBothWays(t *testing.T) {
	var f struct {
		Tests []struct {
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "alerts_test.yml", &f)
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, g := range f.Tests {
		for _, in := range g.InputSeries {
			if unknown := metrics.UnknownNames(in.Series); len(unknown) > 0 {
				t.Errorf("input series %s: dbprobe exports no %q", in.Series, unknown)
			}
		}
		for _, c := range g.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				firing[c.Alertname] = true
			} else {
				silent[c.Alertname] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		if !firing[r.Alert] {
			t.Errorf("%s: no unit test where it fires", r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no unit test where it stays silent", r.Alert)
		}
	}
}

// TestSwitchoverAlertFollowsPhases keeps the Blue/Green alert's bounds on
// dbprobe_bluegreen_phase those of the phases of a running switchover.
func TestSwitchoverAlertFollowsPhases(t *testing.T) {
	boundsRE := regexp.MustCompile(`^dbprobe_bluegreen_phase >= (\d+) and dbprobe_bluegreen_phase <= (\d+)$`)
	for _, r := range loadRules(t) {
		if r.Alert != "DBProbeBlueGreenSwitchoverStarted" {
			continue
		}
		m := boundsRE.FindStringSubmatch(r.Expr)
		if m == nil {
			t.Fatalf("expr %q; want dbprobe_bluegreen_phase >= a and dbprobe_bluegreen_phase <= b", r.Expr)
		}
		from, _ := strconv.Atoi(m[1])
		to, _ := strconv.Atoi(m[2])
		for v := -1; v <= len(event.BlueGreenPhases); v++ {
			if fires := v >= from && v <= to; fires != event.BlueGreenUnderway(v) {
				t.Errorf("the alert fires on phase value %d: %v; the switchover is underway: %v", v, fires, !fires)
			}
		}
		return
	}
	t.Error("no alert DBProbeBlueGreenSwitchoverStarted")
}
