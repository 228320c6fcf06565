// Package grafana holds dbprobe's Grafana dashboard (dbprobe.json, embedded
// as Dashboard) and reads the PromQL queries out of it, so that tests can run
// every panel and annotation query against a real Prometheus.
package grafana

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
)

// Dashboard is dbprobe.json.
//
//go:embed dbprobe.json
var Dashboard []byte

// Query is one PromQL query of the dashboard.
type Query struct {
	// Panel is the panel title, or "annotation: <name>".
	Panel string
	RefID string
	Expr  string
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// Queries returns every panel query and every Prometheus annotation query
// of a dashboard, in the dashboard's order.
func Queries(dashboard []byte) ([]Query, error) {
	var d struct {
		Panels      []panel `json:"panels"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, fmt.Errorf("parse dashboard: %w", err)
	}
	var out []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, Query{Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, Query{Panel: "annotation: " + a.Name, Expr: a.Expr})
		}
	}
	return out, nil
}

var varRE = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// Expand replaces Grafana variables ($name and ${name}) in expr with their
// values in vars, as Grafana does before sending the query. A variable not
// in vars is an error: the query would not be PromQL.
func Expand(expr string, vars map[string]string) (string, error) {
	var missing string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRE.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			missing = name
			return m
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("query %q: no value for variable $%s", expr, missing)
	}
	return out, nil
}

// AllVars are the values Grafana gives the dashboard's variables with
// "All" selected, and its interval variables at a 1 s scrape interval over
// rangeDur (e.g. "5m").
func AllVars(rangeDur string) map[string]string {
	return map[string]string{
		"instance": ".*", "target": ".*", "mode": ".*",
		"__rate_interval": "10s", "__interval": "2s", "__range": rangeDur,
	}
}
