package esfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/internal/indexpattern"
)

type componentTemplate struct {
	name     string
	raw      json.RawMessage
	mappings map[string]any
}

func (c *componentTemplate) body() json.RawMessage { return c.raw }

func (t *indexTemplate) body() json.RawMessage { return t.raw }

type indexTemplate struct {
	name       string
	raw        json.RawMessage
	patterns   []string
	composedOf []string
	priority   int64
	dataStream bool
	mappings   map[string]any
	builtin    bool
}

type dataStream struct {
	name       string
	template   string
	generation int
	indices    []string // backing indices, oldest first; the last is the write index
	created    time.Time
}

// index is a regular index or a backing index of a data stream.
type index struct {
	name     string
	stream   string
	mapping  mapping
	ids      map[string]int // _id -> position in docs (StoreAll) or -1 (StoreIDs)
	docs     []storedDoc
	count    int
	seqNo    int64
	created  time.Time
	template string
}

type storedDoc struct {
	id       string
	source   json.RawMessage
	shardDoc int64
	parsed   map[string]any // decoded on first search
}

func (s *Server) ilmPolicy(w http.ResponseWriter, r *http.Request, name string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		var v struct {
			Policy map[string]any `json:"policy"`
		}
		if err := decodeJSON(body, &v); err != nil || v.Policy == nil {
			writeError(w, http.StatusBadRequest, "x_content_parse_exception", "[1:2] [put_lifecycle_request] policy is missing or not an object")
			return
		}
		s.policies[name] = body
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	case http.MethodGet:
		p, ok := s.policies[name]
		if !ok {
			writeError(w, http.StatusNotFound, "resource_not_found_exception", fmt.Sprintf("Lifecycle policy not found: %s", name))
			return
		}
		writeJSON(w, r, http.StatusOK, map[string]any{name: map[string]any{"version": 1, "policy": json.RawMessage(p)}})
	case http.MethodDelete:
		delete(s.policies, name)
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	default:
		writeError(w, http.StatusMethodNotAllowed, "illegal_argument_exception", "method not allowed")
	}
}

func (s *Server) componentTemplate(w http.ResponseWriter, r *http.Request, rest []string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.Join(rest, "/")
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		if name == "" {
			writeError(w, http.StatusBadRequest, "illegal_argument_exception", "component template name is missing")
			return
		}
		var v struct {
			Template *struct {
				Mappings map[string]any `json:"mappings"`
				Settings map[string]any `json:"settings"`
			} `json:"template"`
		}
		if err := decodeJSON(body, &v); err != nil || v.Template == nil {
			writeError(w, http.StatusBadRequest, "x_content_parse_exception", "[1:2] Required [template]")
			return
		}
		s.components[name] = &componentTemplate{name: name, raw: body, mappings: v.Template.Mappings}
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	case http.MethodGet:
		listTemplates(w, r, "component template", "component_template", name, s.components)
	case http.MethodDelete:
		delete(s.components, name)
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	}
}

func (s *Server) indexTemplate(w http.ResponseWriter, r *http.Request, rest []string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(rest) == 2 && rest[0] == "_simulate_index" && r.Method == http.MethodPost {
		s.simulateIndex(w, r, rest[1])
		return
	}
	name := strings.Join(rest, "/")
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		t, status, typ, reason := s.parseIndexTemplate(name, body)
		if t == nil {
			writeError(w, status, typ, reason)
			return
		}
		s.templates[name] = t
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	case http.MethodGet:
		listTemplates(w, r, "index template", "index_template", name, s.templates)
	case http.MethodDelete:
		delete(s.templates, name)
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	}
}

// listTemplates answers a GET of templates: the one named, or all when
// name is empty, as {"<key>s":[{"name":..,"<key>":{..}}]}.
func listTemplates[T interface{ body() json.RawMessage }](w http.ResponseWriter, r *http.Request, what, key, name string, all map[string]T) {
	var out []map[string]any
	for _, n := range sortedKeys(all) {
		if name == "" || n == name {
			out = append(out, map[string]any{"name": n, key: all[n].body()})
		}
	}
	if name != "" && len(out) == 0 {
		writeError(w, http.StatusNotFound, "resource_not_found_exception", fmt.Sprintf("%s matching [%s] not found", what, name))
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{key + "s": out})
}

// parseIndexTemplate checks a template as Elasticsearch does on PUT.
func (s *Server) parseIndexTemplate(name string, body []byte) (t *indexTemplate, status int, typ, reason string) {
	var v struct {
		IndexPatterns []string        `json:"index_patterns"`
		ComposedOf    []string        `json:"composed_of"`
		Priority      *int64          `json:"priority"`
		DataStream    json.RawMessage `json:"data_stream"`
		Template      *struct {
			Mappings map[string]any `json:"mappings"`
		} `json:"template"`
	}
	if err := decodeJSON(body, &v); err != nil {
		return nil, http.StatusBadRequest, "x_content_parse_exception", fmt.Sprintf("[1:1] [index_template] failed to parse: %v", err)
	}
	if name == "" {
		return nil, http.StatusBadRequest, "illegal_argument_exception", "index template name is missing"
	}
	if len(v.IndexPatterns) == 0 {
		return nil, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;"
	}
	var missing []string
	for _, c := range v.ComposedOf {
		if _, ok := s.components[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, http.StatusBadRequest, "invalid_index_template_exception",
			fmt.Sprintf("index_template [%s] invalid, cause [index template [%s] specifies component templates %v that do not exist]", name, name, missing)
	}
	t = &indexTemplate{name: name, raw: body, patterns: v.IndexPatterns, composedOf: v.ComposedOf,
		dataStream: len(v.DataStream) > 0 && string(v.DataStream) != "null"}
	if v.Priority != nil {
		t.priority = *v.Priority
	}
	if v.Template != nil {
		t.mappings = v.Template.Mappings
	}
	for _, o := range sortedKeys(s.templates) {
		other := s.templates[o]
		if o == name || other.priority != t.priority {
			continue
		}
		if overlapping(t.patterns, other.patterns) {
			return nil, http.StatusBadRequest, "illegal_argument_exception",
				fmt.Sprintf("index template [%s] has index patterns %s matching patterns from existing templates [%s] with patterns (%s => %s) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
					name, listString(t.patterns), o, o, listString(other.patterns), t.priority)
		}
	}
	return t, 0, "", ""
}

func listString(l []string) string { return "[" + strings.Join(l, ", ") + "]" }

// simulateIndex answers which template would apply to a new index name.
func (s *Server) simulateIndex(w http.ResponseWriter, r *http.Request, name string) {
	t, overlaps := s.matchTemplate(name)
	if t == nil {
		writeError(w, http.StatusNotFound, "resource_not_found_exception", fmt.Sprintf("unable to find any index template matching [%s]", name))
		return
	}
	var ov []map[string]any
	for _, o := range overlaps {
		ov = append(ov, map[string]any{"name": o.name, "index_patterns": o.patterns})
	}
	m := s.resolveMapping(t)
	writeJSON(w, r, http.StatusOK, map[string]any{
		"template":    map[string]any{"mappings": m.raw, "settings": map[string]any{}, "aliases": map[string]any{}},
		"overlapping": ov,
		"matched":     t.name, // not in Elasticsearch's answer; handy for tests
	})
}

// matchTemplate returns the highest-priority template matching name and
// the lower-priority ones it shadows.
func (s *Server) matchTemplate(name string) (*indexTemplate, []*indexTemplate) {
	var all []*indexTemplate
	for _, n := range sortedKeys(s.templates) {
		t := s.templates[n]
		for _, p := range t.patterns {
			if globMatch(p, name) {
				all = append(all, t)
				break
			}
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].priority > all[j].priority })
	return all[0], all[1:]
}

// resolveMapping merges the component templates in order, then the
// template's own mappings.
func (s *Server) resolveMapping(t *indexTemplate) mapping {
	merged := map[string]any{}
	for _, c := range t.composedOf {
		if ct, ok := s.components[c]; ok {
			deepMerge(merged, ct.mappings)
		}
	}
	deepMerge(merged, t.mappings)
	return newMapping(merged)
}

func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		sm, ok := v.(map[string]any)
		dm, ok2 := dst[k].(map[string]any)
		if ok && ok2 {
			deepMerge(dm, sm)
			continue
		}
		if ok {
			c := map[string]any{}
			deepMerge(c, sm)
			dst[k] = c
			continue
		}
		dst[k] = v
	}
}

func (s *Server) dataStreamAPI(w http.ResponseWriter, r *http.Request, rest []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.Join(rest, "/")
	switch r.Method {
	case http.MethodPut:
		if _, ok := s.streams[name]; ok {
			writeError(w, http.StatusBadRequest, "resource_already_exists_exception", fmt.Sprintf("data_stream [%s] already exists", name))
			return
		}
		if _, ok := s.indices[name]; ok {
			writeError(w, http.StatusBadRequest, "resource_already_exists_exception", fmt.Sprintf("index [%s] already exists", name))
			return
		}
		if _, err := s.createDataStream(name); err != nil {
			writeError(w, http.StatusBadRequest, "illegal_argument_exception", err.Error())
			return
		}
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	case http.MethodGet:
		var out []map[string]any
		for _, n := range sortedKeys(s.streams) {
			if name != "" && !globMatch(name, n) {
				continue
			}
			ds := s.streams[n]
			var idx []map[string]any
			for _, i := range ds.indices {
				idx = append(idx, map[string]any{"index_name": i, "index_uuid": "uuid-" + i})
			}
			out = append(out, map[string]any{
				"name": n, "timestamp_field": map[string]string{"name": "@timestamp"}, "indices": idx,
				"generation": ds.generation, "status": "GREEN", "template": ds.template, "hidden": false, "system": false,
			})
		}
		if name != "" && !strings.Contains(name, "*") && len(out) == 0 {
			writeError(w, http.StatusNotFound, "index_not_found_exception", fmt.Sprintf("no such index [%s]", name))
			return
		}
		writeJSON(w, r, http.StatusOK, map[string]any{"data_streams": out})
	case http.MethodDelete:
		ds, ok := s.streams[name]
		if !ok {
			writeError(w, http.StatusNotFound, "index_not_found_exception", fmt.Sprintf("no such index [%s]", name))
			return
		}
		for _, i := range ds.indices {
			delete(s.indices, i)
		}
		delete(s.streams, name)
		writeJSON(w, r, http.StatusOK, map[string]bool{"acknowledged": true})
	}
}

// createDataStream creates name from its matching template. Callers hold mu.
func (s *Server) createDataStream(name string) (*dataStream, error) {
	t, _ := s.matchTemplate(name)
	if t == nil || !t.dataStream {
		return nil, fmt.Errorf("no matching index template found for data stream [%s]", name)
	}
	ds := &dataStream{name: name, template: t.name, created: s.now()}
	s.streams[name] = ds
	s.addBackingIndex(ds, t)
	return ds, nil
}

func (s *Server) addBackingIndex(ds *dataStream, t *indexTemplate) {
	ds.generation++
	now := s.now().UTC()
	name := fmt.Sprintf(".ds-%s-%s-%06d", ds.name, now.Format("2006.01.02"), ds.generation)
	m := s.resolveMapping(t)
	if _, ok := m.fields["@timestamp"]; !ok {
		// Every data stream maps its timestamp as a date.
		props, _ := m.raw["properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
			m.raw["properties"] = props
		}
		props["@timestamp"] = map[string]any{"type": "date"}
		m.fields["@timestamp"] = field{typ: "date"}
	}
	ix := &index{name: name, stream: ds.name, mapping: m, created: now, template: t.name}
	if s.opts.Storage != StoreCount {
		ix.ids = map[string]int{}
	}
	s.indices[name] = ix
	ds.indices = append(ds.indices, name)
}

func (s *Server) rollover(w http.ResponseWriter, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds, ok := s.streams[target]
	if !ok {
		writeError(w, http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("rollover target [%s] does not exist", target))
		return
	}
	t, _ := s.matchTemplate(target)
	if t == nil || !t.dataStream {
		writeError(w, http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("no matching index template found for data stream [%s]", target))
		return
	}
	old := ds.indices[len(ds.indices)-1]
	ds.template = t.name
	s.addBackingIndex(ds, t)
	b, _ := json.Marshal(map[string]any{"acknowledged": true, "shards_acknowledged": true,
		"old_index": old, "new_index": ds.indices[len(ds.indices)-1], "rolled_over": true, "dry_run": false, "conditions": map[string]any{}})
	writeRaw(w, http.StatusOK, b)
}

func (s *Server) getMapping(w http.ResponseWriter, r *http.Request, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.resolveIndices(target)
	if len(names) == 0 {
		writeError(w, http.StatusNotFound, "index_not_found_exception", fmt.Sprintf("no such index [%s]", target))
		return
	}
	out := map[string]any{}
	for _, n := range names {
		out[n] = map[string]any{"mappings": s.indices[n].mapping.raw}
	}
	writeJSON(w, r, http.StatusOK, out)
}

// resolveIndices turns a comma-separated list of names and patterns (data
// streams, indices) into concrete index names. Wildcards do not match
// hidden (dot) indices, as in Elasticsearch. Callers hold mu.
func (s *Server) resolveIndices(target string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, part := range strings.Split(target, ",") {
		for _, dn := range sortedKeys(s.streams) {
			if globMatch(part, dn) {
				for _, i := range s.streams[dn].indices {
					add(i)
				}
			}
		}
		for _, in := range sortedKeys(s.indices) {
			if in == part || (strings.Contains(part, "*") && !strings.HasPrefix(in, ".") && globMatch(part, in)) {
				add(in)
			}
		}
	}
	return out
}

func globMatch(pattern, name string) bool { return indexpattern.Match(pattern, name) }

// overlapping reports whether some name matches a pattern of both lists.
func overlapping(a, b []string) bool {
	for _, p := range a {
		for _, q := range b {
			if indexpattern.Intersect(p, q) {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
