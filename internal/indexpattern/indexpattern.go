// Package indexpattern matches Elasticsearch index patterns, where '*'
// stands for any run of characters, as index templates and search targets
// use them.
package indexpattern

import "strings"

// Match reports whether name matches pattern.
func Match(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}

// Intersect reports whether some name matches both patterns, which is
// when Elasticsearch calls two index templates overlapping.
func Intersect(p, q string) bool {
	type key struct{ i, j int }
	memo := map[key]bool{}
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		k := key{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(p) && j == len(q):
			r = true
		case i < len(p) && p[i] == '*':
			r = rec(i+1, j) || (j < len(q) && rec(i, j+1))
		case j < len(q) && q[j] == '*':
			r = rec(i, j+1) || (i < len(p) && rec(i+1, j))
		case i < len(p) && j < len(q):
			r = p[i] == q[j] && rec(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return rec(0, 0)
}
