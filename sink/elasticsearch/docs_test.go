package elasticsearch

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/event"
)

// docRowRE matches a field row of docs/events.md: | `field` | type | meaning |
var docRowRE = regexp.MustCompile("^\\| `([^`]+)` \\| ([a-z_]+) \\|")

// TestEventsDocListsEveryField keeps docs/events.md in step with
// event.Event and the mappings: every field is documented once, with the
// Elasticsearch type it is mapped to.
func TestEventsDocListsEveryField(t *testing.T) {
	b, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m := docRowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := documented[m[1]]; dup {
			t.Errorf("docs/events.md documents %s twice", m[1])
		}
		documented[m[1]] = m[2]
	}
	mapped := map[string]map[string]any{}
	mappedFields(Mappings()["properties"].(map[string]any), "", mapped)
	fields := map[string]reflect.Type{}
	goFields(reflect.TypeFor[event.Event](), "", fields)
	for p := range fields {
		// The servers a finding names are documented once, as objects with
		// the fields of dbprobe.server.
		for _, obj := range []string{"dbprobe.finding.from.", "dbprobe.finding.to.", "dbprobe.finding.server."} {
			if rest, ok := strings.CutPrefix(p, obj); ok {
				if _, ok := documented[strings.TrimSuffix(obj, ".")]; !ok {
					t.Errorf("docs/events.md does not document %s", strings.TrimSuffix(obj, "."))
				}
				p = "dbprobe.server." + rest
			}
		}
		typ, ok := documented[p]
		if !ok {
			t.Errorf("docs/events.md does not document %s", p)
			continue
		}
		want, _ := mapped[p]["type"].(string)
		if typ != want {
			t.Errorf("docs/events.md gives %s type %s; the mappings say %s", p, typ, want)
		}
	}
	for p := range documented {
		_, inGo := fields[p]
		_, inMap := mapped[p]
		for f := range fields {
			inGo = inGo || strings.HasPrefix(f, p+".")
		}
		if !inGo && !inMap {
			t.Errorf("docs/events.md documents %s, which no event carries", p)
		}
	}
}
