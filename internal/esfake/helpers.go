package esfake

import (
	"encoding/json"
	"sort"
)

// Doc is a stored document, as tests read it back.
type Doc struct {
	Index  string // backing index for data streams
	ID     string
	Source json.RawMessage // nil unless Storage is StoreAll
}

// Docs returns the documents of target (a data stream, index or pattern),
// in the order they were stored. With StoreIDs only Index and ID are set;
// with StoreCount nothing is returned.
func (s *Server) Docs(target string) []Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Doc
	for _, n := range s.resolveIndices(target) {
		ix := s.indices[n]
		if s.opts.Storage == StoreIDs {
			ids := make([]string, 0, len(ix.ids))
			for id := range ix.ids {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				out = append(out, Doc{Index: n, ID: id})
			}
			continue
		}
		for _, d := range ix.docs {
			if d.id != "" {
				out = append(out, Doc{Index: n, ID: d.id, Source: d.source})
			}
		}
	}
	return out
}

// Count returns how many documents target holds.
func (s *Server) Count(target string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, name := range s.resolveIndices(target) {
		n += s.indices[name].count
	}
	return n
}

// IDCounts returns how many times each _id is stored in target, across
// backing indices (a data stream only rejects a duplicate _id within one
// backing index). Exactly-once delivery means every count is 1.
func (s *Server) IDCounts(target string) map[string]int {
	out := map[string]int{}
	for _, d := range s.Docs(target) {
		out[d.ID]++
	}
	return out
}

// DataStream describes a data stream, as tests read it back.
type DataStream struct {
	Name     string
	Template string   // index template it was created from
	Indices  []string // backing indices, the write index last
}

// DataStream returns the named data stream and whether it exists.
func (s *Server) DataStream(name string) (DataStream, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds, ok := s.streams[name]
	if !ok {
		return DataStream{}, false
	}
	return DataStream{Name: ds.name, Template: ds.template, Indices: append([]string(nil), ds.indices...)}, true
}

// IndexTemplate returns the body an index template was stored with.
func (s *Server) IndexTemplate(name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.templates[name]
	if !ok {
		return nil, false
	}
	return t.raw, true
}

// ComponentTemplate returns the body a component template was stored with.
func (s *Server) ComponentTemplate(name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.components[name]
	if !ok {
		return nil, false
	}
	return t.raw, true
}

// ILMPolicy returns the body an ILM policy was stored with.
func (s *Server) ILMPolicy(name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.policies[name]
	return p, ok
}
