package esfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pit is a point in time: the documents each index held when it opened.
type pit struct {
	id      string
	indices []pitIndex
	expires time.Time
}

type pitIndex struct {
	name string
	upto int
}

var keepAliveRE = regexp.MustCompile(`^(\d+)(d|h|m|s|ms|micros|nanos)$`)

// parseTimeValue parses Elasticsearch time units ("1m", "30s", "500ms").
func parseTimeValue(v string) (time.Duration, error) {
	m := keepAliveRE.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("failed to parse setting [keep_alive] with value [%s] as a time value: unit is missing or unrecognized", v)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	unit := map[string]time.Duration{"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second,
		"ms": time.Millisecond, "micros": time.Microsecond, "nanos": time.Nanosecond}[m[2]]
	return time.Duration(n) * unit, nil
}

func (s *Server) openPIT(w http.ResponseWriter, r *http.Request, target string) {
	ka := r.URL.Query().Get("keep_alive")
	if ka == "" {
		writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: [keep_alive] is not specified;")
		return
	}
	d, err := parseTimeValue(ka)
	if err != nil {
		writeError(w, http.StatusBadRequest, "illegal_argument_exception", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.resolveIndices(target)
	if len(names) == 0 && !strings.Contains(target, "*") {
		writeCause(w, http.StatusNotFound, errorCause{Type: "index_not_found_exception", Reason: fmt.Sprintf("no such index [%s]", target)})
		return
	}
	p := &pit{id: randomID(48), expires: s.now().Add(d)}
	for _, n := range names {
		p.indices = append(p.indices, pitIndex{name: n, upto: len(s.indices[n].docs)})
	}
	s.pits[p.id] = p
	writeJSON(w, r, http.StatusOK, map[string]any{"id": p.id,
		"_shards": map[string]int{"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}})
}

func (s *Server) closePIT(w http.ResponseWriter, body []byte) {
	var v struct {
		ID string `json:"id"`
	}
	if err := decodeJSON(body, &v); err != nil || v.ID == "" {
		writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no pit ids specified;")
		return
	}
	s.mu.Lock()
	_, ok := s.pits[v.ID]
	delete(s.pits, v.ID)
	s.mu.Unlock()
	if !ok {
		b, _ := json.Marshal(map[string]any{"succeeded": true, "num_freed": 0})
		writeRaw(w, http.StatusNotFound, b)
		return
	}
	b, _ := json.Marshal(map[string]any{"succeeded": true, "num_freed": 1})
	writeRaw(w, http.StatusOK, b)
}

type searchRequest struct {
	Query       map[string]any `json:"query"`
	Sort        []any          `json:"sort"`
	Size        *int           `json:"size"`
	From        int            `json:"from"`
	SearchAfter []any          `json:"search_after"`
	PIT         *struct {
		ID        string `json:"id"`
		KeepAlive string `json:"keep_alive"`
	} `json:"pit"`
	TrackTotalHits any `json:"track_total_hits"`
	Source         any `json:"_source"`
}

type sortKey struct {
	field string
	desc  bool
}

// candidate is a document a search may return.
type candidate struct {
	index string
	doc   *storedDoc
	src   map[string]any
	m     *mapping
	sort  []any
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, target string, body []byte) {
	var req searchRequest
	if len(body) > 0 {
		if err := decodeJSON(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "parsing_exception", fmt.Sprintf("failed to parse search request: %v", err))
			return
		}
	}
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("failed to parse [size] %q", v))
			return
		}
		req.Size = &n
	}
	size := 10
	if req.Size != nil {
		size = *req.Size
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Searches++

	var cands []*candidate
	var pitID string
	if req.PIT != nil {
		if target != "" {
			writeError(w, http.StatusBadRequest, "action_request_validation_exception",
				"Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;")
			return
		}
		p, ok := s.pits[req.PIT.ID]
		if ok && s.now().After(p.expires) {
			delete(s.pits, p.id)
			ok = false
		}
		if !ok {
			writeCause(w, http.StatusNotFound, errorCause{Type: "search_phase_execution_exception", Reason: "all shards failed",
				CausedBy: &errorCause{Type: "search_context_missing_exception", Reason: "No search context found for id [" + req.PIT.ID + "]"}})
			return
		}
		if req.PIT.KeepAlive != "" {
			d, err := parseTimeValue(req.PIT.KeepAlive)
			if err != nil {
				writeError(w, http.StatusBadRequest, "illegal_argument_exception", err.Error())
				return
			}
			p.expires = s.now().Add(d)
		}
		pitID = p.id
		for _, pi := range p.indices {
			if ix, ok := s.indices[pi.name]; ok {
				cands = s.appendCandidates(cands, ix, pi.upto)
			}
		}
	} else {
		if target == "" {
			target = "*"
		}
		names := s.resolveIndices(target)
		if len(names) == 0 && !strings.Contains(target, "*") {
			writeCause(w, http.StatusNotFound, errorCause{Type: "index_not_found_exception", Reason: fmt.Sprintf("no such index [%s]", target)})
			return
		}
		for _, n := range names {
			ix := s.indices[n]
			cands = s.appendCandidates(cands, ix, len(ix.docs))
		}
	}

	keys, err := parseSort(req.Sort)
	if err != nil {
		writeError(w, http.StatusBadRequest, "parsing_exception", err.Error())
		return
	}
	if req.PIT != nil && !hasKey(keys, "_shard_doc") {
		keys = append(keys, sortKey{field: "_shard_doc"})
	}
	var hits []*candidate
	for _, c := range cands {
		ok, err := matches(req.Query, c)
		if err != nil {
			writeError(w, http.StatusBadRequest, "parsing_exception", err.Error())
			return
		}
		if ok {
			hits = append(hits, c)
		}
	}
	total := len(hits)
	if len(keys) > 0 {
		for _, h := range hits {
			h.sort = sortValues(keys, h)
		}
		sort.SliceStable(hits, func(i, j int) bool { return compareTuples(keys, hits[i].sort, hits[j].sort) < 0 })
	}
	if req.SearchAfter != nil {
		if len(req.SearchAfter) != len(keys) {
			writeError(w, http.StatusBadRequest, "illegal_argument_exception",
				fmt.Sprintf("search_after has %d value(s) but sort has %d.", len(req.SearchAfter), len(keys)))
			return
		}
		after := normaliseAfter(req.SearchAfter)
		i := sort.Search(len(hits), func(i int) bool { return compareTuples(keys, hits[i].sort, after) > 0 })
		hits = hits[i:]
	} else if req.From > 0 {
		if req.From >= len(hits) {
			hits = nil
		} else {
			hits = hits[req.From:]
		}
	}
	if len(hits) > size {
		hits = hits[:size]
	}
	out := make([]map[string]any, 0, len(hits))
	for _, h := range hits {
		hit := map[string]any{"_index": h.index, "_id": h.doc.id, "_score": nil}
		if req.Source != false {
			hit["_source"] = h.doc.source
		}
		if len(keys) > 0 {
			hit["sort"] = h.sort
		} else {
			hit["_score"] = 1.0
		}
		out = append(out, hit)
	}
	resp := map[string]any{
		"took": 1, "timed_out": false,
		"_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": total, "relation": "eq"}, "max_score": nil, "hits": out},
	}
	if pitID != "" {
		resp["pit_id"] = pitID
	}
	writeJSON(w, r, http.StatusOK, resp)
}

func (s *Server) count(w http.ResponseWriter, r *http.Request, target string, body []byte) {
	var req searchRequest
	if len(body) > 0 {
		if err := decodeJSON(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "parsing_exception", err.Error())
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, name := range s.resolveIndices(target) {
		ix := s.indices[name]
		if req.Query == nil {
			n += ix.count
			continue
		}
		for _, c := range s.appendCandidates(nil, ix, len(ix.docs)) {
			if ok, err := matches(req.Query, c); err != nil {
				writeError(w, http.StatusBadRequest, "parsing_exception", err.Error())
				return
			} else if ok {
				n++
			}
		}
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"count": n, "_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0}})
}

func (s *Server) appendCandidates(out []*candidate, ix *index, upto int) []*candidate {
	for i := 0; i < upto && i < len(ix.docs); i++ {
		d := &ix.docs[i]
		if d.id == "" {
			continue // deleted
		}
		if d.parsed == nil {
			_ = decodeJSON(d.source, &d.parsed)
		}
		out = append(out, &candidate{index: ix.name, doc: d, src: d.parsed, m: &ix.mapping})
	}
	return out
}

func hasKey(keys []sortKey, f string) bool {
	for _, k := range keys {
		if k.field == f {
			return true
		}
	}
	return false
}

func parseSort(raw []any) ([]sortKey, error) {
	var keys []sortKey
	for _, e := range raw {
		switch t := e.(type) {
		case string:
			keys = append(keys, sortKey{field: t, desc: t == "_score"})
		case map[string]any:
			for f, spec := range t {
				k := sortKey{field: f}
				switch sp := spec.(type) {
				case string:
					k.desc = sp == "desc"
				case map[string]any:
					k.desc = sp["order"] == "desc"
				default:
					return nil, fmt.Errorf("malformed sort for [%s]", f)
				}
				keys = append(keys, k)
			}
		default:
			return nil, fmt.Errorf("malformed sort")
		}
	}
	return keys, nil
}

func sortValues(keys []sortKey, c *candidate) []any {
	vals := make([]any, len(keys))
	for i, k := range keys {
		switch k.field {
		case "_shard_doc", "_doc":
			vals[i] = c.doc.shardDoc
			continue
		case "_score":
			vals[i] = 1.0
			continue
		}
		vs := lookup(c.src, k.field)
		typ := c.m.fields[k.field].typ
		var best any
		for _, v := range vs {
			sv := sortable(typ, v)
			if sv == nil {
				continue
			}
			if best == nil || (compareValues(sv, best) < 0) != k.desc {
				best = sv
			}
		}
		vals[i] = best
	}
	return vals
}

// sortable converts a source value to what Elasticsearch returns as its
// sort value: epoch milliseconds for dates, numbers for numbers, strings.
func sortable(typ string, v any) any {
	switch typ {
	case "date", "date_nanos":
		switch t := v.(type) {
		case string:
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
				if ts, err := time.Parse(layout, t); err == nil {
					return ts.UnixMilli()
				}
			}
			return nil
		case json.Number:
			n, _ := t.Int64()
			return n
		}
	case "long", "integer", "short", "byte", "unsigned_long":
		switch t := v.(type) {
		case json.Number:
			if n, err := t.Int64(); err == nil {
				return n
			}
			f, _ := t.Float64()
			return int64(f)
		case string:
			n, _ := strconv.ParseInt(t, 10, 64)
			return n
		}
	case "float", "double", "half_float", "scaled_float":
		switch t := v.(type) {
		case json.Number:
			f, _ := t.Float64()
			return f
		case string:
			f, _ := strconv.ParseFloat(t, 64)
			return f
		}
	}
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	}
	return nil
}

func normaliseAfter(vals []any) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		if n, ok := v.(json.Number); ok {
			if iv, err := n.Int64(); err == nil {
				out[i] = iv
			} else {
				out[i], _ = n.Float64()
			}
			continue
		}
		out[i] = v
	}
	return out
}

// compareTuples orders two sort tuples; missing values sort last.
func compareTuples(keys []sortKey, a, b []any) int {
	for i, k := range keys {
		av, bv := a[i], b[i]
		switch {
		case av == nil && bv == nil:
			continue
		case av == nil:
			return 1
		case bv == nil:
			return -1
		}
		c := compareValues(av, bv)
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func compareValues(a, b any) int {
	af, aNum := toFloat(a)
	bf, bNum := toFloat(b)
	if aNum && bNum {
		ai, aInt := a.(int64)
		bi, bInt := b.(int64)
		if aInt && bInt {
			return cmp(ai, bi)
		}
		return cmp(af, bf)
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func cmp[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case int64:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}

// lookup returns the values at a dotted path, flattening arrays.
func lookup(v any, path string) []any {
	if path == "" {
		if arr, ok := v.([]any); ok {
			return arr
		}
		if v == nil {
			return nil
		}
		return []any{v}
	}
	switch t := v.(type) {
	case map[string]any:
		var out []any
		// Both nested objects and dotted keys can hold the path.
		for k, sub := range t {
			if k == path {
				out = append(out, lookup(sub, "")...)
			} else if strings.HasPrefix(path, k+".") {
				out = append(out, lookup(sub, path[len(k)+1:])...)
			}
		}
		return out
	case []any:
		var out []any
		for _, e := range t {
			out = append(out, lookup(e, path)...)
		}
		return out
	}
	return nil
}

// matches evaluates the query subset the fake supports: match_all, term,
// terms, match, ids, exists, range and bool.
func matches(q map[string]any, c *candidate) (bool, error) {
	if len(q) == 0 {
		return true, nil
	}
	for typ, body := range q {
		ok, err := matchOne(typ, body, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func matchOne(typ string, body any, c *candidate) (bool, error) {
	b, _ := body.(map[string]any)
	switch typ {
	case "match_all":
		return true, nil
	case "term", "match", "match_phrase":
		for f, v := range b {
			if m, ok := v.(map[string]any); ok {
				if vv, ok := m["value"]; ok {
					v = vv
				} else {
					v = m["query"]
				}
			}
			if !anyEqual(lookup(c.src, f), v) {
				return false, nil
			}
		}
		return true, nil
	case "terms":
		for f, v := range b {
			list, _ := v.([]any)
			found := false
			for _, want := range list {
				if anyEqual(lookup(c.src, f), want) {
					found = true
					break
				}
			}
			if !found {
				return false, nil
			}
		}
		return true, nil
	case "ids":
		list, _ := b["values"].([]any)
		for _, id := range list {
			if id == c.doc.id {
				return true, nil
			}
		}
		return false, nil
	case "exists":
		f, _ := b["field"].(string)
		return len(lookup(c.src, f)) > 0, nil
	case "range":
		for f, spec := range b {
			sp, _ := spec.(map[string]any)
			typ := c.m.fields[f].typ
			vals := lookup(c.src, f)
			in := false
			for _, v := range vals {
				sv := sortable(typ, v)
				if sv != nil && inRange(typ, sv, sp) {
					in = true
					break
				}
			}
			if !in {
				return false, nil
			}
		}
		return true, nil
	case "bool":
		for _, clause := range []string{"must", "filter"} {
			for _, sub := range clauses(b[clause]) {
				if ok, err := matches(sub, c); err != nil || !ok {
					return false, err
				}
			}
		}
		for _, sub := range clauses(b["must_not"]) {
			if ok, err := matches(sub, c); err != nil || ok {
				return false, err
			}
		}
		should := clauses(b["should"])
		if len(should) > 0 && b["must"] == nil && b["filter"] == nil {
			for _, sub := range should {
				if ok, err := matches(sub, c); err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown query [%s]", typ)
}

func clauses(v any) []map[string]any {
	switch t := v.(type) {
	case map[string]any:
		return []map[string]any{t}
	case []any:
		var out []map[string]any
		for _, e := range t {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func anyEqual(vals []any, want any) bool {
	w := fmt.Sprint(want)
	for _, v := range vals {
		if fmt.Sprint(v) == w {
			return true
		}
	}
	return false
}

func inRange(typ string, v any, spec map[string]any) bool {
	for op, bound := range spec {
		bv := sortable(typ, bound)
		if bv == nil {
			if n, ok := bound.(json.Number); ok {
				bv, _ = n.Float64()
			} else {
				continue
			}
		}
		c := compareValues(v, bv)
		switch op {
		case "gt":
			if c <= 0 {
				return false
			}
		case "gte":
			if c < 0 {
				return false
			}
		case "lt":
			if c >= 0 {
				return false
			}
		case "lte":
			if c > 0 {
				return false
			}
		}
	}
	return true
}
