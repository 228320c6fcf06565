package event

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/internal/doctable"
)

func names[T any](list []T, name func(T) string) []string {
	var out []string
	for _, v := range list {
		out = append(out, name(v))
	}
	return out
}

// TestEventsDocListsTheVocabulary keeps the values docs/events.md gives for
// the vocabulary fields equal to the lists here, in their order.
func TestEventsDocListsTheVocabulary(t *testing.T) {
	want := map[string][]string{
		"event.dataset":           {DatasetProbe, DatasetFinding},
		"error.type":              names(Classes, func(c Class) string { return c.Name }),
		"dbprobe.failure.phase":   names(Phases, func(p Phase) string { return p.Name }),
		"dbprobe.bluegreen.phase": names(BlueGreenPhases, func(p BlueGreenPhase) string { return p.Name }),
		"dbprobe.finding.signal":  Signals,
	}
	seen := map[string]bool{}
	for _, row := range doctable.Rows(t, "../docs/events.md", "Field") {
		field := strings.Trim(row[0], "`")
		w, ok := want[field]
		if !ok {
			continue
		}
		seen[field] = true
		// The values follow the colon where the meaning has one.
		meaning := row[2]
		if _, after, ok := strings.Cut(meaning, ": "); ok {
			meaning = after
		}
		if got := doctable.Codes(meaning); !slices.Equal(got, w) {
			t.Errorf("docs/events.md lists %s as %q; want %q", field, got, w)
		}
	}
	for field := range want {
		if !seen[field] {
			t.Errorf("docs/events.md has no row for %s", field)
		}
	}
}

// TestProbingDocDescribesEveryClass keeps the table of error classes in
// docs/probing.md equal to Classes: every class, in order, with its
// description and what to check when a target fails with it from the start.
func TestProbingDocDescribesEveryClass(t *testing.T) {
	check := map[string]string{}
	for _, row := range doctable.Rows(t, "../docs/probing.md", "failing from the first probe with") {
		check[strings.Trim(row[0], "`")] = strings.ReplaceAll(row[1], `\|`, "|")
	}
	var got []Class
	for _, row := range doctable.Rows(t, "../docs/probing.md", "class") {
		name := strings.Trim(row[0], "`")
		got = append(got, Class{name, row[1], check[name]})
	}
	if !slices.Equal(got, Classes) {
		t.Errorf("docs/probing.md describes the classes as\n%q\nwant\n%q", got, Classes)
	}
}

// TestPhasesAreTheLatencyFields ties Phases to Latency: each phase's
// accessor returns the field named like the phase in JSON, and every
// duration field but replica (not a phase of the probe) and total is a
// phase.
func TestPhasesAreTheLatencyFields(t *testing.T) {
	var l Latency
	lv := reflect.ValueOf(&l).Elem()
	byAddr := map[uintptr]string{}
	var fields []string
	for i := 0; i < lv.NumField(); i++ {
		f := lv.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "replica" || name == "total" {
			continue
		}
		fields = append(fields, name)
		byAddr[lv.Field(i).Addr().Pointer()] = name
	}
	var phases []string
	for _, p := range Phases {
		phases = append(phases, p.Name)
		field := p.Latency(&l)
		if got := byAddr[reflect.ValueOf(field).Pointer()]; got != p.Name {
			t.Errorf("phase %s keeps its latency in latency_ms.%s", p.Name, got)
		}
	}
	if !slices.Equal(phases, fields) {
		t.Errorf("phases %q; the Latency fields are %q", phases, fields)
	}
}

func TestBlueGreenRank(t *testing.T) {
	for i, p := range BlueGreenPhases {
		for _, s := range []string{p.Name, strings.ToLower(p.Name), p.Status, " " + strings.ToLower(p.Status) + " "} {
			if strings.TrimSpace(s) == "" {
				continue
			}
			if r, ok := BlueGreenRank(s); r != i || !ok {
				t.Errorf("BlueGreenRank(%q) = %d, %v; want %d", s, r, ok, i)
			}
		}
		if p.Status == "" {
			continue
		}
		if name, r, ok := BlueGreenOfStatus(strings.ToLower(p.Status)); name != p.Name || r != i || !ok {
			t.Errorf("BlueGreenOfStatus(%q) = %s, %d, %v; want %s, %d", p.Status, name, r, ok, p.Name, i)
		}
		if _, _, ok := BlueGreenOfStatus(p.Name); ok && p.Name != p.Status {
			t.Errorf("BlueGreenOfStatus takes the phase name %s for a status", p.Name)
		}
	}
	for _, s := range []string{"", "SOMETHING_NEW"} {
		if r, ok := BlueGreenRank(s); ok || r != -1 {
			t.Errorf("BlueGreenRank(%q) = %d, %v; want -1, false", s, r, ok)
		}
	}
}

func TestBlueGreenUnderway(t *testing.T) {
	var got []string
	for i, p := range BlueGreenPhases {
		if BlueGreenUnderway(i) {
			got = append(got, p.Name)
		}
	}
	if want := []string{BlueGreenPreparation, BlueGreenInProgress, BlueGreenPost}; !slices.Equal(got, want) {
		t.Errorf("underway phases %q; want %q", got, want)
	}
	if BlueGreenUnderway(-1) {
		t.Error("an unknown phase is underway")
	}
}
