package indexpattern

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"logs-dbprobe-*", "logs-dbprobe-default", true},
		{"logs-*-*", "logs-dbprobe-default", true},
		{"logs-*-*", "logs-nodash", false},
		{"logs-dbprobe-default", "logs-dbprobe-default", true},
		{"logs-dbprobe-default", "logs-dbprobe-prod", false},
		{"*", ".ds-x", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v; want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestIntersect(t *testing.T) {
	tests := []struct {
		p, q string
		want bool
	}{
		{"logs-*-*", "logs-dbprobe-*", true},
		{"logs-dbprobe-*", "metrics-*-*", false},
		{"egg*", "baz", false},
		{"baz*", "baz", true},
		{"a*", "*b", true},
		{"abc", "abd", false},
	}
	for _, tt := range tests {
		if got := Intersect(tt.p, tt.q); got != tt.want {
			t.Errorf("Intersect(%q, %q) = %v; want %v", tt.p, tt.q, got, tt.want)
		}
		if got := Intersect(tt.q, tt.p); got != tt.want {
			t.Errorf("Intersect(%q, %q) = %v; want %v", tt.q, tt.p, got, tt.want)
		}
	}
}
