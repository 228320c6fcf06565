package esfake

import (
	"encoding/json"
	"strings"
)

// pathFilter is a parsed filter_path: comma-separated dotted patterns where
// "*" matches one key and "**" any number of keys. Arrays are transparent.
type pathFilter [][]string

func parseFilter(fp string) pathFilter {
	var f pathFilter
	for _, p := range strings.Split(fp, ",") {
		if p = strings.TrimSpace(p); p != "" {
			f = append(f, strings.Split(p, "."))
		}
	}
	return f
}

// match reports whether path is wholly included (some pattern ends at or
// above it) or leads towards an included field.
func (f pathFilter) match(path []string) (full, partial bool) {
	for _, p := range f {
		fu, pa := matchPattern(p, path)
		full = full || fu
		partial = partial || pa
	}
	return full, partial
}

func matchPattern(p, path []string) (full, partial bool) {
	if len(path) == 0 {
		return len(p) == 0, len(p) > 0
	}
	if len(p) == 0 {
		return true, false
	}
	if p[0] == "**" {
		f1, p1 := matchPattern(p[1:], path) // ** matches nothing
		f2, p2 := matchPattern(p, path[1:]) // ** eats one key
		return f1 || f2, p1 || p2 || true
	}
	if p[0] != "*" && !globMatch(p[0], path[0]) {
		return false, false
	}
	return matchPattern(p[1:], path[1:])
}

// filterJSON applies filter_path to a JSON answer.
func filterJSON(b []byte, fp string) []byte {
	var v any
	if err := decodeJSON(b, &v); err != nil {
		return b
	}
	out, ok := filterValue(parseFilter(fp), nil, v)
	if !ok {
		return []byte("{}")
	}
	nb, err := json.Marshal(out)
	if err != nil {
		return b
	}
	return nb
}

func filterValue(f pathFilter, path []string, v any) (any, bool) {
	if len(path) > 0 {
		full, partial := f.match(path)
		if full {
			return v, true
		}
		if !partial {
			return nil, false
		}
	}
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range t {
			if fv, ok := filterValue(f, append(path[:len(path):len(path)], k), e); ok {
				out[k] = fv
			}
		}
		if len(out) == 0 {
			return nil, false
		}
		return out, true
	case []any:
		var out []any
		for _, e := range t {
			if fv, ok := filterValue(f, path, e); ok {
				out = append(out, fv)
			}
		}
		if len(out) == 0 {
			return nil, false
		}
		return out, true
	}
	return nil, false
}

// bulkFieldFilter returns whether a dotted path of a _bulk answer is
// included at all by filter_path.
func bulkFieldFilter(fp string) func(path string) bool {
	f := parseFilter(fp)
	return func(path string) bool {
		full, partial := f.match(strings.Split(path, "."))
		return full || partial
	}
}
