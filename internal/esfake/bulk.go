package esfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// bulkAction is one action line: {"<op>":{"_index":..,"_id":..}}.
type bulkAction struct {
	Create *bulkMeta `json:"create"`
	Index  *bulkMeta `json:"index"`
	Delete *bulkMeta `json:"delete"`
	Update *bulkMeta `json:"update"`
}

type bulkMeta struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
}

// bulkItem is one entry of the response's items; the op name wraps it.
type bulkItem struct {
	Index       string      `json:"_index,omitempty"`
	ID          string      `json:"_id,omitempty"`
	Version     int64       `json:"_version,omitempty"`
	Result      string      `json:"result,omitempty"`
	Shards      *shardsInfo `json:"_shards,omitempty"`
	SeqNo       *int64      `json:"_seq_no,omitempty"`
	PrimaryTerm int64       `json:"_primary_term,omitempty"`
	Status      int         `json:"status,omitempty"`
	Error       *errorCause `json:"error,omitempty"`
}

type shardsInfo struct {
	Total      int `json:"total"`
	Successful int `json:"successful"`
	Failed     int `json:"failed"`
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, pathIndex string, body []byte) {
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
		return
	}
	if body[len(body)-1] != '\n' {
		writeError(w, http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	q := r.URL.Query()
	requireDS := q.Get("require_data_stream") == "true"
	start := time.Now()

	s.mu.Lock()
	s.counts.BulkRequests++
	itemFault := s.faults.item
	reset := s.faults.resetLeft > 0
	if reset {
		s.faults.resetLeft--
	}
	type out struct {
		op   string
		item bulkItem
	}
	var items []out
	errors := false
	line := 0
	for len(body) > 0 {
		action, rest := cutLine(body)
		body = rest
		line++
		if len(bytes.TrimSpace(action)) == 0 {
			continue
		}
		var a bulkAction
		if err := json.Unmarshal(action, &a); err != nil {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "x_content_parse_exception",
				fmt.Sprintf("[%d:1] Malformed action/metadata line [%d], expected START_OBJECT or END_OBJECT but found [%v]", line, line, err))
			return
		}
		op, meta := a.op()
		if meta == nil {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "illegal_argument_exception",
				fmt.Sprintf("Malformed action/metadata line [%d], expected one of [create, delete, index, update]", line))
			return
		}
		var source []byte
		if op != "delete" {
			if len(body) == 0 {
				s.mu.Unlock()
				writeError(w, http.StatusBadRequest, "illegal_argument_exception",
					fmt.Sprintf("The bulk request must be terminated by a newline [\\n]; no source after action line [%d]", line))
				return
			}
			source, body = cutLine(body)
			line++
		}
		target := meta.Index
		if target == "" {
			target = pathIndex
		}
		if target == "" {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
			return
		}
		var it bulkItem
		if itemFault != nil {
			if st := itemFault(meta.ID, source); st != 0 {
				s.counts.ItemFaults++
				it = bulkItem{Index: target, ID: meta.ID, Status: st, Error: itemFaultCause(st, meta.ID)}
			}
		}
		if it.Status == 0 {
			it = s.applyItem(op, target, meta.ID, source, requireDS)
		}
		if it.Error != nil {
			errors = true
		}
		items = append(items, out{op, it})
	}
	s.mu.Unlock()

	// The response is written by hand: at benchmark rates reflection or a
	// map per item would dominate the fake's cost.
	var keep func(path string) bool
	if fp := q.Get("filter_path"); fp != "" {
		keep = bulkFieldFilter(fp)
	}
	kept := map[string]*[9]bool{} // per op: which item fields filter_path keeps
	var b bytes.Buffer
	b.Grow(64 + len(items)*64)
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	b.WriteByte('{')
	if keep == nil || keep("took") {
		sep()
		b.WriteString(`"took":`)
		b.WriteString(strconv.FormatInt(time.Since(start).Milliseconds(), 10))
	}
	if keep == nil || keep("errors") {
		sep()
		b.WriteString(`"errors":`)
		b.WriteString(strconv.FormatBool(errors))
	}
	if keep == nil || keep("items") {
		sep()
		b.WriteString(`"items":[`)
		for i, o := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			k, ok := kept[o.op]
			if !ok {
				k = new([9]bool)
				for f, name := range itemFields {
					k[f] = keep == nil || keep("items."+o.op+"."+name)
				}
				kept[o.op] = k
			}
			writeItem(&b, o.op, &o.item, k)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	if reset {
		resetMidResponse(w, b.Bytes())
		return
	}
	writeRaw(w, http.StatusOK, b.Bytes())
}

// itemFields are the fields of a _bulk item, in the order written.
var itemFields = [9]string{"_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term", "status", "error"}

// writeItem writes {"<op>":{...}} with the fields keep allows.
func writeItem(b *bytes.Buffer, op string, it *bulkItem, keep *[9]bool) {
	b.WriteString(`{"`)
	b.WriteString(op)
	b.WriteString(`":{`)
	n := 0
	field := func(name string) {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString(`":`)
	}
	str := func(v string) {
		sb, _ := json.Marshal(v)
		b.Write(sb)
	}
	if keep[0] && it.Index != "" {
		field("_index")
		str(it.Index)
	}
	if keep[1] && it.ID != "" {
		field("_id")
		str(it.ID)
	}
	if keep[2] && it.Version != 0 {
		field("_version")
		b.WriteString(strconv.FormatInt(it.Version, 10))
	}
	if keep[3] && it.Result != "" {
		field("result")
		str(it.Result)
	}
	if keep[4] && it.Shards != nil {
		field("_shards")
		fmt.Fprintf(b, `{"total":%d,"successful":%d,"failed":%d}`, it.Shards.Total, it.Shards.Successful, it.Shards.Failed)
	}
	if keep[5] && it.SeqNo != nil {
		field("_seq_no")
		b.WriteString(strconv.FormatInt(*it.SeqNo, 10))
	}
	if keep[6] && it.PrimaryTerm != 0 {
		field("_primary_term")
		b.WriteString(strconv.FormatInt(it.PrimaryTerm, 10))
	}
	if keep[7] && it.Status != 0 {
		field("status")
		b.WriteString(strconv.Itoa(it.Status))
	}
	if keep[8] && it.Error != nil {
		field("error")
		eb, _ := json.Marshal(it.Error)
		b.Write(eb)
	}
	b.WriteString("}}")
}

func (a *bulkAction) op() (string, *bulkMeta) {
	switch {
	case a.Create != nil:
		return "create", a.Create
	case a.Index != nil:
		return "index", a.Index
	case a.Delete != nil:
		return "delete", a.Delete
	case a.Update != nil:
		return "update", a.Update
	}
	return "", nil
}

func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line = b[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, b[i+1:]
}

// applyItem performs one item. Callers hold mu.
func (s *Server) applyItem(op, target, id string, source []byte, requireDS bool) bulkItem {
	fail := func(status int, c *errorCause) bulkItem {
		return bulkItem{Index: target, ID: id, Status: status, Error: c}
	}
	ds, isDS := s.streams[target]
	ix, isIndex := s.indices[target]
	if !isDS && !isIndex {
		t, _ := s.matchTemplate(target)
		switch {
		case t != nil && t.dataStream:
			if op != "create" {
				return fail(http.StatusBadRequest, &errorCause{Type: "illegal_argument_exception",
					Reason: "only write ops with an op_type of create are allowed in data streams"})
			}
			ds, _ = s.createDataStream(target)
			isDS = true
		case requireDS:
			return fail(http.StatusBadRequest, &errorCause{Type: "illegal_argument_exception",
				Reason: fmt.Sprintf("no matching index template found for data stream [%s]", target)})
		default:
			ix = &index{name: target, created: s.now()}
			if t != nil {
				ix.mapping, ix.template = s.resolveMapping(t), t.name
			} else {
				ix.mapping = newMapping(nil)
			}
			if s.opts.Storage != StoreCount {
				ix.ids = map[string]int{}
			}
			s.indices[target] = ix
		}
	}
	if isDS {
		if op != "create" {
			return fail(http.StatusBadRequest, &errorCause{Type: "illegal_argument_exception",
				Reason: "only write ops with an op_type of create are allowed in data streams"})
		}
		ix = s.indices[ds.indices[len(ds.indices)-1]]
	} else if requireDS {
		return fail(http.StatusBadRequest, &errorCause{Type: "illegal_argument_exception",
			Reason: fmt.Sprintf("index [%s] is not a data stream and require_data_stream is set", target)})
	}
	switch op {
	case "update":
		return fail(http.StatusBadRequest, &errorCause{Type: "illegal_argument_exception", Reason: "esfake does not implement update"})
	case "delete":
		return s.deleteDoc(ix, id)
	}
	if id == "" {
		id = randomID(15)
	}
	if s.opts.Storage == StoreAll {
		if err := ix.mapping.check(source, id, isDS); err != nil {
			return bulkItem{Index: ix.name, ID: id, Status: http.StatusBadRequest, Error: err}
		}
	}
	if ix.ids != nil {
		if _, dup := ix.ids[id]; dup {
			if op == "create" {
				s.counts.Conflicts++
				return bulkItem{Index: ix.name, ID: id, Status: http.StatusConflict, Error: &errorCause{
					Type:   "version_conflict_engine_exception",
					Reason: fmt.Sprintf("[%s]: version conflict, document already exists (current version [1])", id)}}
			}
			// index over an existing document: replace it.
			s.shardDoc++
			if s.opts.Storage == StoreAll {
				ix.docs[ix.ids[id]] = storedDoc{id: id, source: append(json.RawMessage(nil), source...), shardDoc: s.shardDoc}
			}
			ix.seqNo++
			seq := ix.seqNo - 1
			return bulkItem{Index: ix.name, ID: id, Version: 2, Result: "updated", Shards: &shardsInfo{2, 1, 0},
				SeqNo: &seq, PrimaryTerm: 1, Status: http.StatusOK}
		}
	}
	s.shardDoc++
	switch s.opts.Storage {
	case StoreAll:
		ix.ids[id] = len(ix.docs)
		ix.docs = append(ix.docs, storedDoc{id: id, source: append(json.RawMessage(nil), source...), shardDoc: s.shardDoc})
	case StoreIDs:
		ix.ids[id] = -1
	}
	ix.count++
	ix.seqNo++
	s.counts.Created++
	seq := ix.seqNo - 1
	return bulkItem{Index: ix.name, ID: id, Version: 1, Result: "created", Shards: &shardsInfo{2, 1, 0},
		SeqNo: &seq, PrimaryTerm: 1, Status: http.StatusCreated}
}

func (s *Server) deleteDoc(ix *index, id string) bulkItem {
	pos, ok := ix.ids[id]
	if !ok {
		return bulkItem{Index: ix.name, ID: id, Version: 1, Result: "not_found", Shards: &shardsInfo{2, 1, 0}, Status: http.StatusNotFound}
	}
	delete(ix.ids, id)
	if pos >= 0 {
		ix.docs[pos] = storedDoc{}
	}
	ix.count--
	return bulkItem{Index: ix.name, ID: id, Version: 2, Result: "deleted", Shards: &shardsInfo{2, 1, 0}, Status: http.StatusOK}
}

// itemFaultCause is the error Elasticsearch reports for an item failing
// with status.
func itemFaultCause(status int, id string) *errorCause {
	switch status {
	case http.StatusTooManyRequests:
		return &errorCause{Type: "es_rejected_execution_exception",
			Reason: "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=1024, max_coordinating_and_primary_bytes=107374182]"}
	case http.StatusBadRequest:
		return &errorCause{Type: "document_parsing_exception",
			Reason:   fmt.Sprintf("[1:42] failed to parse field [dbprobe.tick] of type [long] in document with id '%s'. Preview of field's value: 'many'", id),
			CausedBy: &errorCause{Type: "illegal_argument_exception", Reason: `For input string: "many"`}}
	case http.StatusForbidden:
		return &errorCause{Type: "cluster_block_exception",
			Reason: "index [logs] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}
	case http.StatusServiceUnavailable:
		return &errorCause{Type: "unavailable_shards_exception",
			Reason: "[logs][0] primary shard is not active Timeout: [1m]"}
	}
	return &errorCause{Type: "exception", Reason: fmt.Sprintf("esfake injected item status %d", status)}
}

// resetMidResponse sends the headers and half of body, then resets the
// connection, as a proxy or node dying mid-answer does.
func resetMidResponse(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	type netConner interface{ NetConn() net.Conn }
	raw := conn
	if nc, ok := conn.(netConner); ok {
		raw = nc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	conn.Close()
}

// mapping is a resolved index mapping: the JSON Elasticsearch would show
// and a path index for checking documents.
type mapping struct {
	raw    map[string]any
	fields map[string]field
	root   string // root "dynamic"
}

type field struct {
	typ     string // "object" for objects
	dynamic string // objects only; "" inherits
	value   string // constant_keyword value
}

func newMapping(raw map[string]any) mapping {
	if raw == nil {
		raw = map[string]any{}
	}
	m := mapping{raw: raw, fields: map[string]field{}, root: "true"}
	if d, ok := raw["dynamic"]; ok {
		m.root = fmt.Sprint(d)
	}
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for name, v := range props {
			def, _ := v.(map[string]any)
			path := prefix + name
			f := field{typ: "object"}
			if t, ok := def["type"].(string); ok {
				f.typ = t
			}
			if d, ok := def["dynamic"]; ok {
				f.dynamic = fmt.Sprint(d)
			}
			if v, ok := def["value"].(string); ok {
				f.value = v
			}
			m.fields[path] = f
			if sub, ok := def["properties"].(map[string]any); ok {
				walk(path+".", sub)
			}
		}
	}
	if props, ok := raw["properties"].(map[string]any); ok {
		walk("", props)
	}
	return m
}

// check parses source and checks every value against the mapping, as
// Elasticsearch does while indexing. A nil result means the document is
// accepted.
func (m mapping) check(source []byte, id string, dataStream bool) *errorCause {
	var doc map[string]any
	if err := decodeJSON(source, &doc); err != nil {
		return &errorCause{Type: "document_parsing_exception", Reason: fmt.Sprintf("[1:1] failed to parse: %v", err),
			CausedBy: &errorCause{Type: "json_parse_exception", Reason: err.Error()}}
	}
	if dataStream {
		if _, ok := doc["@timestamp"]; !ok {
			return &errorCause{Type: "document_parsing_exception",
				Reason:   "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing",
				CausedBy: &errorCause{Type: "illegal_argument_exception", Reason: "data stream timestamp field [@timestamp] is missing"}}
		}
	}
	return m.checkObject("", m.root, doc, id)
}

func (m mapping) checkObject(prefix, dynamic string, obj map[string]any, id string) *errorCause {
	for k, v := range obj {
		path := prefix + k
		f, ok := m.fields[path]
		if !ok {
			if dynamic == "strict" {
				parent := strings.TrimSuffix(prefix, ".")
				if parent == "" {
					parent = "_doc"
				}
				return &errorCause{Type: "strict_dynamic_mapping_exception",
					Reason: fmt.Sprintf("[1:1] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", k, parent)}
			}
			// Dotted keys are paths into objects.
			if i := strings.IndexByte(k, '.'); i > 0 {
				if err := m.checkObject(prefix, dynamic, map[string]any{k[:i]: map[string]any{k[i+1:]: v}}, id); err != nil {
					return err
				}
			}
			continue
		}
		if err := m.checkValue(path, f, dynamic, v, id); err != nil {
			return err
		}
	}
	return nil
}

func (m mapping) checkValue(path string, f field, dynamic string, v any, id string) *errorCause {
	if v == nil {
		return nil
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if err := m.checkValue(path, f, dynamic, e, id); err != nil {
				return err
			}
		}
		return nil
	}
	bad := func() *errorCause {
		preview := fmt.Sprint(v)
		if len(preview) > 40 {
			preview = preview[:40]
		}
		return &errorCause{Type: "document_parsing_exception",
			Reason: fmt.Sprintf("[1:1] failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'",
				path, f.typ, id, preview),
			CausedBy: &errorCause{Type: "illegal_argument_exception", Reason: fmt.Sprintf("cannot parse %q as [%s]", preview, f.typ)}}
	}
	obj, isObj := v.(map[string]any)
	switch f.typ {
	case "object", "nested":
		if !isObj {
			return &errorCause{Type: "document_parsing_exception",
				Reason: fmt.Sprintf("[1:1] object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", path, path)}
		}
		d := dynamic
		if f.dynamic != "" {
			d = f.dynamic
		}
		return m.checkObject(path+".", d, obj, id)
	case "flattened":
		return nil
	}
	if isObj {
		return bad()
	}
	str, isStr := v.(string)
	num, isNum := v.(json.Number)
	switch f.typ {
	case "date", "date_nanos":
		if isNum {
			return nil
		}
		if !isStr || !parsesAsDate(str) {
			return bad()
		}
	case "long", "integer", "short", "byte", "unsigned_long", "float", "double", "half_float", "scaled_float":
		if isStr {
			num, isNum = json.Number(str), true
		}
		if !isNum {
			return bad()
		}
		if _, err := num.Float64(); err != nil {
			return bad()
		}
	case "boolean":
		if _, ok := v.(bool); ok {
			return nil
		}
		if !isStr || (str != "true" && str != "false" && str != "") {
			return bad()
		}
	case "ip":
		if !isStr {
			return bad()
		}
		if _, err := netip.ParseAddr(str); err != nil {
			return bad()
		}
	case "constant_keyword":
		if f.value != "" && fmt.Sprint(v) != f.value {
			return &errorCause{Type: "document_parsing_exception",
				Reason: fmt.Sprintf("[1:1] failed to parse field [%s] of type [constant_keyword] in document with id '%s'. [constant_keyword] field [%s] only accepts values that are equal to the value defined in the mappings [%s], but got [%v]", path, id, path, f.value, v)}
		}
	}
	return nil
}

func parsesAsDate(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}
