package safetext

import "testing"

func TestLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text: Müller 東京 ✓", "plain text: Müller 東京 ✓"},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"\x1b[2J\x1b[31mred\x07", `\x1b[2J\x1b[31mred\x07`},
		{"\x7f\u0085", `\x7f\u0085`},
		{"abc\u202edcba", `abc\u202edcba`},
		{"line\u2028sep", `line\u2028sep`},
		{"bad \xff utf8", `bad \xff utf8`},
		{`already \n escaped`, `already \n escaped`},
	}
	for _, tt := range tests {
		if got := Line(tt.in); got != tt.want {
			t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
