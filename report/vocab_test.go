package report_test

import (
	"os"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/event"
)

// TestEveryBlueGreenPhaseColoured keeps the timeline's colours in step
// with event.BlueGreenPhases: each phase from PREPARATION on has its own
// fill, so a reader tells a switchover's phases apart.
func TestEveryBlueGreenPhaseColoured(t *testing.T) {
	css, err := os.ReadFile("html.css")
	if err != nil {
		t.Fatal(err)
	}
	from, _ := event.BlueGreenRank(event.BlueGreenPreparation)
	for _, p := range event.BlueGreenPhases[from:] {
		if class := "svg .phase-" + strings.ToLower(p.Name) + " { fill:"; !strings.Contains(string(css), class) {
			t.Errorf("html.css has no %q: phase %s is drawn like the phases before a switchover", class, p.Name)
		}
	}
}
