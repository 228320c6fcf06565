package elasticsearch

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/event"
)

const kibanaFile = "../../dashboards/kibana/dbprobe.ndjson"

type savedObject struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Attributes json.RawMessage `json:"attributes"`
	References []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"references"`
}

// lensAttrs is the part of a Lens saved object that names fields.
type lensAttrs struct {
	Title             string `json:"title"`
	VisualizationType string `json:"visualizationType"`
	State             struct {
		DatasourceStates struct {
			FormBased struct {
				Layers map[string]struct {
					ColumnOrder []string `json:"columnOrder"`
					Columns     map[string]struct {
						DataType      string `json:"dataType"`
						OperationType string `json:"operationType"`
						SourceField   string `json:"sourceField"`
						Params        struct {
							Size            int      `json:"size"`
							SecondaryFields []string `json:"secondaryFields"`
							Filters         []struct {
								Input struct {
									Query    string `json:"query"`
									Language string `json:"language"`
								} `json:"input"`
								Label string `json:"label"`
							} `json:"filters"`
							OrderBy struct {
								ColumnID string `json:"columnId"`
							} `json:"orderBy"`
						} `json:"params"`
					} `json:"columns"`
				} `json:"layers"`
			} `json:"formBased"`
		} `json:"datasourceStates"`
		Visualization struct {
			Layers []struct {
				LayerID       string   `json:"layerId"`
				LayerType     string   `json:"layerType"`
				XAccessor     string   `json:"xAccessor"`
				SplitAccessor string   `json:"splitAccessor"`
				Accessors     []string `json:"accessors"`
				Annotations   []struct {
					TimeField   string   `json:"timeField"`
					ExtraFields []string `json:"extraFields"`
					Filter      struct {
						Query string `json:"query"`
					} `json:"filter"`
				} `json:"annotations"`
			} `json:"layers"`
		} `json:"visualization"`
		Query struct {
			Query    string `json:"query"`
			Language string `json:"language"`
		} `json:"query"`
	} `json:"state"`
}

func readSavedObjects(t *testing.T) []savedObject {
	t.Helper()
	f, err := os.Open(kibanaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []savedObject
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var o savedObject
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("%s line %d is not a JSON object: %v", kibanaFile, n, err)
		}
		out = append(out, o)
	}
	return out
}

// kqlFieldRE finds the field of each "field : value" clause of a KQL query.
var kqlFieldRE = regexp.MustCompile(`([A-Za-z_@][\w.@]*)\s*:`)

// TestKibanaSavedObjects checks dashboards/kibana/dbprobe.ndjson the way an
// import would fail on it, and that every field it uses exists in dbprobe's
// mappings with a type fit for how it is used.
func TestKibanaSavedObjects(t *testing.T) {
	mapped := map[string]map[string]any{}
	mappedFields(Mappings()["properties"].(map[string]any), "", mapped)
	typeOf := func(f string) string {
		def, ok := mapped[f]
		if !ok {
			return ""
		}
		s, _ := def["type"].(string)
		return s
	}
	numeric := []string{"long", "double", "float", "scaled_float", "unsigned_long"}
	aggregatable := append([]string{"keyword", "constant_keyword", "boolean", "ip", "date"}, numeric...)
	checkField := func(where, f string, allowed []string) {
		t.Helper()
		typ := typeOf(f)
		switch {
		case typ == "":
			t.Errorf("%s uses field %s, which the mappings do not have", where, f)
		case allowed != nil && !slices.Contains(allowed, typ):
			t.Errorf("%s uses %s (%s); want one of %v", where, f, typ, allowed)
		}
	}
	checkQuery := func(where, q string) {
		t.Helper()
		for _, m := range kqlFieldRE.FindAllStringSubmatch(q, -1) {
			checkField(where+" query", m[1], nil)
		}
	}

	objs := readSavedObjects(t)
	byKey := map[string]savedObject{}
	types := map[string]int{}
	for _, o := range objs {
		key := o.Type + ":" + o.ID
		if _, dup := byKey[key]; dup {
			t.Errorf("saved object %s appears twice", key)
		}
		byKey[key] = o
		types[o.Type]++
	}
	for _, o := range objs {
		names := map[string]bool{}
		for _, r := range o.References {
			if _, ok := byKey[r.Type+":"+r.ID]; !ok {
				t.Errorf("%s %s references %s %s, which is not in the file", o.Type, o.ID, r.Type, r.ID)
			}
			if names[r.Name] {
				t.Errorf("%s %s has two references named %s", o.Type, o.ID, r.Name)
			}
			names[r.Name] = true
		}
		where := o.Type + " " + o.ID
		switch o.Type {
		case "index-pattern":
			var a struct {
				Title          string `json:"title"`
				TimeFieldName  string `json:"timeFieldName"`
				FieldFormatMap string `json:"fieldFormatMap"`
			}
			if err := json.Unmarshal(o.Attributes, &a); err != nil {
				t.Fatal(err)
			}
			if a.Title != IndexPattern {
				t.Errorf("data view title %q; want %q, the data streams dbprobe writes", a.Title, IndexPattern)
			}
			checkField(where+" timeFieldName", a.TimeFieldName, []string{"date"})
			var formats map[string]any
			if err := json.Unmarshal([]byte(a.FieldFormatMap), &formats); err != nil {
				t.Errorf("%s fieldFormatMap: %v", where, err)
			}
			for f := range formats {
				checkField(where+" fieldFormatMap", f, nil)
			}
		case "lens":
			var a lensAttrs
			if err := json.Unmarshal(o.Attributes, &a); err != nil {
				t.Fatal(err)
			}
			checkQuery(where, a.State.Query.Query)
			for id, l := range a.State.DatasourceStates.FormBased.Layers {
				if !names["indexpattern-datasource-layer-"+id] {
					t.Errorf("%s: data layer %s has no data view reference", where, id)
				}
				for _, cid := range l.ColumnOrder {
					if _, ok := l.Columns[cid]; !ok {
						t.Errorf("%s: columnOrder names %s, which is not a column", where, cid)
					}
				}
				for cid, c := range l.Columns {
					cw := where + " column " + cid
					var allowed []string
					dataType := map[string]string{"keyword": "string", "constant_keyword": "string", "ip": "ip", "boolean": "boolean", "date": "date"}
					switch c.OperationType {
					case "date_histogram":
						allowed = []string{"date"}
					case "terms":
						allowed = aggregatable
					case "average", "sum", "min", "max", "median", "percentile", "standard_deviation":
						allowed = numeric
					case "count":
						if c.SourceField != "___records___" {
							allowed = aggregatable
						}
					case "filters":
						// Buckets by KQL queries, on no one field.
						if len(c.Params.Filters) == 0 || c.DataType != "string" {
							t.Errorf("%s: filters column with %d filters and dataType %q; want some, string", cw, len(c.Params.Filters), c.DataType)
						}
						for _, f := range c.Params.Filters {
							if f.Input.Language != "kuery" || f.Label == "" {
								t.Errorf("%s: filter %q: language %q, label %q; want kuery and a label", cw, f.Input.Query, f.Input.Language, f.Label)
							}
							checkQuery(cw+" filter "+f.Label, f.Input.Query)
						}
						continue
					default:
						t.Errorf("%s: operation %s is not checked by this test", cw, c.OperationType)
					}
					if c.OperationType == "count" && c.SourceField == "___records___" {
						continue
					}
					checkField(cw, c.SourceField, allowed)
					for _, f := range c.Params.SecondaryFields {
						checkField(cw+" secondary", f, aggregatable)
					}
					want := dataType[typeOf(c.SourceField)]
					if slices.Contains(numeric, typeOf(c.SourceField)) || c.OperationType != "terms" && c.OperationType != "date_histogram" {
						want = "number"
					}
					if c.DataType != want {
						t.Errorf("%s: dataType %q for %s (%s); want %q", cw, c.DataType, c.SourceField, typeOf(c.SourceField), want)
					}
					if ob := c.Params.OrderBy.ColumnID; ob != "" {
						if _, ok := l.Columns[ob]; !ok {
							t.Errorf("%s: ordered by column %s, which does not exist", cw, ob)
						}
					}
				}
			}
			annotations, overTime := 0, false
			for _, vl := range a.State.Visualization.Layers {
				switch vl.LayerType {
				case "data":
					cols := a.State.DatasourceStates.FormBased.Layers[vl.LayerID].Columns
					overTime = overTime || cols[vl.XAccessor].OperationType == "date_histogram"
					for _, acc := range append([]string{vl.XAccessor, vl.SplitAccessor}, vl.Accessors...) {
						if _, ok := cols[acc]; acc != "" && !ok {
							t.Errorf("%s: visualization layer %s uses column %s, which its data layer lacks", where, vl.LayerID, acc)
						}
					}
				case "annotations":
					if !names["xy-visualization-layer-"+vl.LayerID] {
						t.Errorf("%s: annotation layer %s has no data view reference", where, vl.LayerID)
					}
					for _, an := range vl.Annotations {
						annotations++
						checkField(where+" annotation", an.TimeField, []string{"date"})
						for _, f := range an.ExtraFields {
							checkField(where+" annotation", f, aggregatable)
						}
						checkQuery(where+" annotation", an.Filter.Query)
					}
				default:
					t.Errorf("%s: layer type %q is not checked by this test", where, vl.LayerType)
				}
			}
			// Cutovers and windows are marked on every chart over time; a
			// ranking (the fleet's top targets) has no time axis.
			if annotations == 0 && overTime {
				t.Errorf("%s has no annotations for cutovers and windows", where)
			}
		case "dashboard":
			var a struct {
				Title       string `json:"title"`
				PanelsJSON  string `json:"panelsJSON"`
				OptionsJSON string `json:"optionsJSON"`
				Meta        struct {
					SearchSourceJSON string `json:"searchSourceJSON"`
				} `json:"kibanaSavedObjectMeta"`
			}
			if err := json.Unmarshal(o.Attributes, &a); err != nil {
				t.Fatal(err)
			}
			var panels []struct {
				PanelIndex   string `json:"panelIndex"`
				PanelRefName string `json:"panelRefName"`
				GridData     struct {
					X, Y, W, H int
					I          string
				} `json:"gridData"`
			}
			if err := json.Unmarshal([]byte(a.PanelsJSON), &panels); err != nil {
				t.Fatalf("%s panelsJSON: %v", where, err)
			}
			for _, js := range []string{a.OptionsJSON, a.Meta.SearchSourceJSON} {
				if !json.Valid([]byte(js)) {
					t.Errorf("%s: embedded JSON %q does not parse", where, js)
				}
			}
			for _, p := range panels {
				if !names[p.PanelIndex+":"+p.PanelRefName] {
					t.Errorf("%s: panel %s has no reference %s:%s", where, p.PanelIndex, p.PanelIndex, p.PanelRefName)
				}
				if p.GridData.X+p.GridData.W > 48 || p.GridData.I != p.PanelIndex {
					t.Errorf("%s: panel %s grid %+v; want it inside the 48-column grid, i = panelIndex", where, p.PanelIndex, p.GridData)
				}
			}
			if len(panels) != len(o.References) {
				t.Errorf("%s has %d panels and %d references", where, len(panels), len(o.References))
			}
		default:
			t.Errorf("saved object type %q is not checked by this test", o.Type)
		}
	}
	if types["index-pattern"] != 1 || types["dashboard"] != 1 || types["lens"] < 5 {
		t.Errorf("saved objects by type %v; want a data view, a dashboard and at least 5 Lens visualisations", types)
	}
}

// TestKibanaShowsEveryClass keeps the dashboard's error class panels able to
// show every class apart: a terms split on error.type with fewer buckets
// than there are classes would lump some into "Other".
func TestKibanaShowsEveryClass(t *testing.T) {
	splits := 0
	for _, o := range readSavedObjects(t) {
		if o.Type != "lens" {
			continue
		}
		var a lensAttrs
		if err := json.Unmarshal(o.Attributes, &a); err != nil {
			t.Fatal(err)
		}
		for _, l := range a.State.DatasourceStates.FormBased.Layers {
			for cid, c := range l.Columns {
				if c.OperationType != "terms" || c.SourceField != "error.type" {
					continue
				}
				splits++
				if c.Params.Size < len(event.Classes) {
					t.Errorf("lens %s column %s shows %d error classes; there are %d", o.ID, cid, c.Params.Size, len(event.Classes))
				}
			}
		}
	}
	if splits == 0 {
		t.Error("no Kibana panel splits by error class (error.type)")
	}
}

// TestKibanaFleetPanel: the dashboard ranks targets by the downtime of the
// windows that closed in the selected range.
func TestKibanaFleetPanel(t *testing.T) {
	var fleet *lensAttrs
	var onDashboard bool
	for _, o := range readSavedObjects(t) {
		if o.Type == "lens" && o.ID == "dbprobe-fleet-downtime" {
			fleet = new(lensAttrs)
			if err := json.Unmarshal(o.Attributes, fleet); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range o.References {
			onDashboard = onDashboard || o.Type == "dashboard" && r.ID == "dbprobe-fleet-downtime"
		}
	}
	if fleet == nil || !onDashboard {
		t.Fatalf("fleet panel present %v, on the dashboard %v; want both", fleet != nil, onDashboard)
	}
	var byTarget, sumDuration bool
	for _, l := range fleet.State.DatasourceStates.FormBased.Layers {
		for _, c := range l.Columns {
			byTarget = byTarget || c.OperationType == "terms" && c.SourceField == "dbprobe.target" && c.Params.OrderBy.ColumnID != ""
			sumDuration = sumDuration || c.OperationType == "sum" && c.SourceField == "dbprobe.finding.duration_seconds"
		}
	}
	q := fleet.State.Query.Query
	if !byTarget || !sumDuration || !strings.Contains(q, event.ActionReadWindowClosed) || !strings.Contains(q, event.ActionWriteWindowClosed) {
		t.Errorf("fleet panel: by target %v, sum of window durations %v, query %q; want targets ranked by the closed windows' duration", byTarget, sumDuration, q)
	}
}
