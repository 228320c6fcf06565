package redact

import "testing"

func TestString(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"whole token", []string{"t"}, "probe:t@tcp(db:3306)", "probe:*****@tcp(db:3306)"},
		{"one character inside words is kept", []string{"t"}, "dial tcp 127.0.0.1:3306: connect: connection refused",
			"dial tcp 127.0.0.1:3306: connect: connection refused"},
		{"short secret inside a word is kept", []string{"den"}, "Access denied for user 'probe'", "Access denied for user 'probe'"},
		{"short secret as a quoted value", []string{"den"}, `invalid bool value: "den"`, `invalid bool value: "*****"`},
		{"long secret anywhere", []string{"s3cretpw99"}, "xxs3cretpw99yy", "xx*****yy"},
		{"longest first", []string{"abc", "abcdef"}, "pw=abcdef", "pw=*****"},
		{"punctuation at the edge", []string{"!x!"}, "a!x!b", "a*****b"},
		{"url-escaped form", []string{"p@ss/w rd"}, "probe:p%40ss%2Fw+rd@tcp", "probe:*****@tcp"},
		{"empty secret ignored", []string{""}, "abc", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.secrets...).String(tt.in); got != tt.want {
				t.Errorf("String(%q) with %q = %q, want %q", tt.in, tt.secrets, got, tt.want)
			}
		})
	}
	var nilR *Redactor
	if got := nilR.String("abc"); got != "abc" {
		t.Errorf("nil redactor changed %q", got)
	}
}

// TestNewKeepsEachSecretOnce: every masked message is scanned once per
// entry, so a fleet sharing one password must not hold it once per target.
func TestNewKeepsEachSecretOnce(t *testing.T) {
	r := New("passw0rd1", "other-pw2", "passw0rd1", "other-pw2", "passw0rd1")
	seen := map[string]int{}
	for _, s := range r.secrets {
		seen[s]++
	}
	for s, n := range seen {
		if n > 1 {
			t.Errorf("secret %q kept %d times; want once", s, n)
		}
	}
}
