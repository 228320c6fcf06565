package probe

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/doctable"
)

// TestProbingDocListsServerErrors keeps the "MySQL errors" column of the
// error class table in docs/probing.md equal to the numbers classify maps,
// and every class it maps to one of event.Classes.
func TestProbingDocListsServerErrors(t *testing.T) {
	numRE := regexp.MustCompile(`\d+`)
	documented := map[string][]int{}
	for _, row := range doctable.Rows(t, "../docs/probing.md", "class") {
		class := strings.Trim(row[0], "`")
		for _, n := range numRE.FindAllString(row[2], -1) {
			v, _ := strconv.Atoi(n)
			documented[class] = append(documented[class], v)
		}
	}
	mapped := map[string][]int{}
	for n, class := range serverClasses {
		mapped[class] = append(mapped[class], int(n))
		if !slices.ContainsFunc(event.Classes, func(c event.Class) bool { return c.Name == class }) {
			t.Errorf("error %d maps to class %q, which is not in event.Classes", n, class)
		}
	}
	for _, c := range event.Classes {
		got, want := documented[c.Name], mapped[c.Name]
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("docs/probing.md lists MySQL errors %v for %s; classify maps %v", got, c.Name, want)
		}
	}
}
