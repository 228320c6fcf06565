package elasticsearch

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// mappedFields flattens mappings into path -> type; objects without a type
// are "object".
func mappedFields(props map[string]any, prefix string, out map[string]map[string]any) {
	for name, v := range props {
		def := v.(map[string]any)
		path := prefix + name
		if sub, ok := def["properties"].(map[string]any); ok {
			mappedFields(sub, path+".", out)
			continue
		}
		out[path] = def
	}
}

// goFields flattens a struct type into JSON path -> Go type, as
// encoding/json writes it.
func goFields(t reflect.Type, prefix string, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			goFields(ft, prefix+name+".", out)
			continue
		}
		out[prefix+name] = ft
	}
}

// fits lists the Elasticsearch types that hold a Go type faithfully.
func fits(t reflect.Type) []string {
	switch t.Kind() {
	case reflect.String:
		return []string{"keyword", "match_only_text", "text", "ip", "wildcard", "constant_keyword"}
	case reflect.Bool:
		return []string{"boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return []string{"long", "unsigned_long"}
	case reflect.Float32, reflect.Float64:
		return []string{"double", "float", "scaled_float"}
	case reflect.Slice:
		return fits(t.Elem())
	case reflect.Map:
		return []string{"object"}
	case reflect.Struct: // time.Time
		return []string{"date", "date_nanos"}
	}
	return nil
}

// TestMappingsCoverEveryEventField keeps mappings.json and event.Event in
// step: every field a document can carry is mapped with a type that holds
// it, and nothing is mapped that no event carries.
func TestMappingsCoverEveryEventField(t *testing.T) {
	m := Mappings()
	mapped := map[string]map[string]any{}
	mappedFields(m["properties"].(map[string]any), "", mapped)
	fields := map[string]reflect.Type{}
	goFields(reflect.TypeFor[event.Event](), "", fields)

	var paths []string
	for p := range fields {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		ft := fields[p]
		def, ok := mapped[p]
		if !ok {
			t.Errorf("event field %s (%v) is not in mappings.json", p, ft)
			continue
		}
		typ, _ := def["type"].(string)
		ok = false
		for _, f := range fits(ft) {
			ok = ok || f == typ
		}
		if !ok {
			t.Errorf("event field %s (%v) is mapped as %q; want one of %v", p, ft, typ, fits(ft))
		}
		if ft.Kind() == reflect.Map && def["dynamic"] != true {
			t.Errorf("map field %s is not a dynamic object; its keys would not be indexed", p)
		}
	}
	for p := range mapped {
		if _, ok := fields[p]; !ok && !strings.HasPrefix(p, "data_stream.") {
			t.Errorf("mappings.json maps %s, which no event carries", p)
		}
	}
	// The maps' values get their type from a dynamic template.
	templates := map[string]string{}
	for _, dt := range m["dynamic_templates"].([]any) {
		for _, v := range dt.(map[string]any) {
			d := v.(map[string]any)
			templates[d["path_match"].(string)] = d["mapping"].(map[string]any)["type"].(string)
		}
	}
	for _, p := range paths {
		ft := fields[p]
		if ft.Kind() != reflect.Map {
			continue
		}
		typ, ok := templates[p+".*"]
		if !ok {
			t.Errorf("no dynamic template for the values of %s", p)
			continue
		}
		ok = false
		for _, f := range fits(ft.Elem()) {
			ok = ok || f == typ
		}
		if !ok {
			t.Errorf("values of %s (%v) get type %q; want one of %v", p, ft.Elem(), typ, fits(ft.Elem()))
		}
	}
	if m["dynamic"] != false {
		t.Errorf("root dynamic = %v; want false so unknown fields never change the mapping", m["dynamic"])
	}
}
