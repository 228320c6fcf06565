package grafana

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/promtest"
	"github.com/dbprobe/dbprobe/sink/metrics"
)

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ H, W, X, Y int }

type fullPanel struct {
	ID         int          `json:"id"`
	Type       string       `json:"type"`
	Title      string       `json:"title"`
	Datasource *dsRef       `json:"datasource"`
	GridPos    gridPos      `json:"gridPos"`
	Targets    []fullTarget `json:"targets"`
}

type fullTarget struct {
	Datasource *dsRef `json:"datasource"`
	Expr       string `json:"expr"`
	RefID      string `json:"refId"`
}

type dashboard struct {
	Inputs     json.RawMessage `json:"__inputs"`
	UID        string          `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string `json:"name"`
			BuiltIn    int    `json:"builtIn"`
			Datasource *dsRef `json:"datasource"`
			Expr       string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []fullPanel `json:"panels"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(Dashboard, &d); err != nil {
		t.Fatalf("dbprobe.json: %v", err)
	}
	return d
}

const dsUID = "${datasource}"

// TestDashboardShape: provisioning-friendly (a datasource variable, no
// __inputs), every query on that variable, the required panel kinds and
// annotations, a sane layout.
func TestDashboardShape(t *testing.T) {
	d := load(t)
	if d.Inputs != nil {
		t.Errorf("dashboard has __inputs: provisioning cannot resolve them; use the datasource variable")
	}
	if d.UID == "" {
		t.Errorf("dashboard has no uid")
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Errorf("no templating variable {name: datasource, type: datasource, query: prometheus}")
	}
	kinds := map[string]int{}
	ids := map[int]string{}
	var boxes []fullPanel
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, q := range boxes {
			if overlap(p.GridPos, q.GridPos) {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		boxes = append(boxes, p)
		if p.Type == "row" {
			continue
		}
		kinds[p.Type]++
		if p.Datasource == nil || p.Datasource.UID != dsUID {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, dsUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != dsUID || tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: target %+v lacks datasource %s, expr or refId", p.Title, tg, dsUID)
			}
		}
	}
	for _, k := range []string{"stat", "timeseries", "state-timeline"} {
		if kinds[k] == 0 {
			t.Errorf("no %s panel", k)
		}
	}
	names := map[string]bool{}
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 1 {
			continue
		}
		names[a.Name] = true
		if a.Datasource == nil || a.Datasource.UID != dsUID || a.Expr == "" {
			t.Errorf("annotation %q: datasource %+v or expr missing", a.Name, a.Datasource)
		}
	}
	for _, n := range []string{"Cutovers", "Interruptions"} {
		if !names[n] {
			t.Errorf("no annotation %q", n)
		}
	}
}

func overlap(a, b gridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

// TestQueriesValid: every query expands with the dashboard's variables,
// names only metrics dbprobe exports, and is PromQL that promtool accepts.
func TestQueriesValid(t *testing.T) {
	qs, err := Queries(Dashboard)
	if err != nil {
		t.Fatal(err)
	}
	d := load(t)
	var panelTargets int
	for _, p := range d.Panels {
		panelTargets += len(p.Targets)
	}
	if want := panelTargets + len(d.Annotations.List) - 1; len(qs) != want {
		t.Errorf("Queries returned %d queries, want %d (every target and non-built-in annotation)", len(qs), want)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		expr, err := Expand(q.Expr, AllVars("5m"))
		if err != nil {
			t.Errorf("%s: %v", q.Panel, err)
			continue
		}
		if unknown := metrics.UnknownNames(expr); len(unknown) > 0 {
			t.Errorf("%s: query names metrics dbprobe does not export: %q", q.Panel, unknown)
		}
		fmt.Fprintf(&rules, "      - record: dashboard_query_%d\n        expr: %s\n", i, strconv.Quote(expr))
	}
	// promtool parses every expression of a rule file: a free PromQL check
	// without a server.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "queries.yml"), []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := promtest.RunPromtool(t, dir, nil, "check", "rules", "queries.yml"); err != nil {
		t.Errorf("dashboard queries are not valid PromQL: %v", err)
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{`x{a=~"$target"}[$__rate_interval]`, `x{a=~".*"}[10s]`, false},
		{`x{a=~"${mode}"}`, `x{a=~".*"}`, false},
		{`x[$__range]`, `x[5m]`, false},
		{`x{a="$nope"}`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Expand(tc.in, AllVars("5m"))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("Expand(%q) = %q, %v, want %q (error: %v)", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

// TestBlueGreenValuesNamed keeps the value mappings of every panel showing
// dbprobe_bluegreen_phase equal to the values it takes: one per phase of
// event.BlueGreenPhases, named by its RDS name as the report and status
// page name it, and unknown.
func TestBlueGreenValuesNamed(t *testing.T) {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			FieldConfig struct {
				Defaults struct {
					Mappings []struct {
						Type    string         `json:"type"`
						Options map[string]any `json:"options"`
					} `json:"mappings"`
				} `json:"defaults"`
			} `json:"fieldConfig"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(Dashboard, &d); err != nil {
		t.Fatal(err)
	}
	want := []string{strconv.Itoa(metrics.PhaseUnknown)}
	for i := range event.BlueGreenPhases {
		want = append(want, strconv.Itoa(i))
	}
	panels := 0
	for _, p := range d.Panels {
		// changes() of the phase counts transitions; only the value itself
		// needs names.
		if len(p.Targets) == 0 || !strings.HasPrefix(p.Targets[0].Expr, "dbprobe_bluegreen_phase") {
			continue
		}
		panels++
		var got []string
		for _, m := range p.FieldConfig.Defaults.Mappings {
			if m.Type != "value" {
				continue
			}
			got = append(got, slices.Collect(maps.Keys(m.Options))...)
			for i, ph := range event.BlueGreenPhases {
				o, _ := m.Options[strconv.Itoa(i)].(map[string]any)
				if o != nil && o["text"] != ph.Name {
					t.Errorf("panel %q names phase %d %q, want %q", p.Title, i, o["text"], ph.Name)
				}
			}
		}
		slices.SortFunc(got, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
		if !slices.Equal(got, want) {
			t.Errorf("panel %q names the values %q; want %q", p.Title, got, want)
		}
	}
	if panels == 0 {
		t.Error("no panel shows dbprobe_bluegreen_phase")
	}
}

// TestFleetRow: the fleet row ranks targets by downtime over the selected
// range, so that a maintenance window's worst databases show first.
func TestFleetRow(t *testing.T) {
	d := load(t)
	var row bool
	var top *fullPanel
	for i, p := range d.Panels {
		if p.Type == "row" && p.Title == "Fleet" {
			row = true
		}
		if row && p.Type == "table" {
			top = &d.Panels[i]
		}
	}
	if !row || top == nil {
		t.Fatal("no Fleet row with a table under it")
	}
	expr := top.Targets[0].Expr
	for _, want := range []string{"topk(", "dbprobe_downtime_seconds_total", "[$__range]", "by (target"} {
		if !strings.Contains(expr, want) {
			t.Errorf("fleet table query %q lacks %q", expr, want)
		}
	}
}
