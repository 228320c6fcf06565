package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		file string
		// want lists substrings the error must contain: the field path
		// and the bad value.
		want []string
	}{
		{"unknown-top.yml", []string{"intervall: unknown field"}},
		{"unknown-target.yml", []string{"targets[0].timout: unknown field"}},
		{"interval-too-small.yml", []string{"targets[1].interval: must be at least 10ms (got 1ms)"}},
		{"bad-duration.yml", []string{"timeout: not a duration", `"soon"`}},
		{"no-targets.yml", []string{"targets: at least one target is required"}},
		{"dup-target.yml", []string{`targets[1].name: "db" is already the name of targets[0]`}},
		{"bad-mode.yml", []string{`targets[0].modes[1]: must be fresh or pooled (got "cached")`}},
		{"dsn-and-host.yml", []string{"targets[0].dsn: give either dsn or host"}},
		{"bad-dsn.yml", []string{"targets[0].dsn: not a valid DSN"}},
		{"unix-dsn.yml", []string{`targets[0].dsn: only tcp(host:port) addresses can be probed (got "unix")`}},
		{"missing-env.yml", []string{"targets[0].dsn: environment variable DBPROBE_TEST_UNSET is not set"}},
		{"bad-port.yml", []string{"targets[0].port: must be 1-65535 (got 70000)"}},
		{"port-not-int.yml", []string{`targets[0].port: must be an integer (got string "three")`}},
		{"bad-dns.yml", []string{`dns.server: must be host:port (got "resolver.local")`}},
		{"password-file-missing.yml", []string{`targets[0].password_file: cannot read "/nonexistent/dbprobe-secret"`}},
		{"bad-table.yml", []string{`targets[0].write.table: must be a table name`, `"x; DROP TABLE y"`}},
		{"targets-not-list.yml", []string{"targets: must be a list (got a mapping)"}},
		{"bad-level.yml", []string{`log.level: must be debug, info, warn or error (got "loud")`}},
		{"bad-segment.yml", []string{`sinks.journal.segment_size: not a size (got "lots"`}},
		{"not-yaml.yml", []string{"not valid YAML"}},
		{"empty.yml", []string{"the file is empty"}},
		{"green-without-write.yml", []string{"targets[0].green: measuring replication lag needs the write probe"}},
		{"green-bad-field.yml", []string{"targets[0].green.usr: unknown field"}},
		{"bad-retention.yml", []string{`sinks.journal.retention.delete_after: not a duration (got "soon"`,
			`sinks.journal.retention.max_bytes: must be at least two segments`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadFile(path, noEnv)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("LoadFile(%q) = %v; want a *config.Error", path, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadFile(%q) error:\n%v\nwant it to contain %q", path, err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cretpw") {
				t.Errorf("LoadFile(%q) error leaks the password: %v", path, err)
			}
		})
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	src := `
interval: 500ms
targets:
  - {name: a, host: db.example, user: probe}
  - {name: b, host: 10.0.0.1, port: 3307, user: probe, interval: 100ms, timeout: 1s, modes: [pooled], dns: {server: "127.0.0.1:5353"}}
`
	c, err := Parse([]byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a, b := &c.Targets[0], &c.Targets[1]
	if got := a.EffectiveInterval(); got != 500*time.Millisecond {
		t.Errorf("a interval = %v; want 500ms", got)
	}
	if got := a.EffectiveTimeout(); got != 2*time.Second {
		t.Errorf("a timeout = %v; want the 2s default", got)
	}
	if got := strings.Join(a.Modes, ","); got != "fresh" {
		t.Errorf("a modes = %q; want fresh", got)
	}
	if h, p := a.HostPort(); h != "db.example" || p != 3306 {
		t.Errorf("a endpoint = %s:%d; want db.example:3306", h, p)
	}
	if got := b.EffectiveInterval(); got != 100*time.Millisecond {
		t.Errorf("b interval = %v; want 100ms", got)
	}
	if got := b.EffectiveDNS().Server; got != "127.0.0.1:5353" {
		t.Errorf("b dns = %q; want the override", got)
	}
	if c.Observer.Name == "" {
		t.Error("observer.name not defaulted")
	}
	if c.Sinks.Journal.Dir != "./dbprobe-data" || c.Sinks.Journal.SegmentSize.Bytes != 64<<20 {
		t.Errorf("journal defaults = %+v", c.Sinks.Journal)
	}
}

func TestSecretsFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file: #secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PW": `we"ird: #pass`}
	src := `
targets:
  - name: a
    dsn: "probe:${PW}@tcp(db:3306)/x"
  - name: b
    host: db
    user: probe
    password_file: ` + pwFile + `
  - name: c
    host: db
    user: probe
    password: ${PW}
`
	c, err := Parse([]byte(src), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`we"ird: #pass`, "from-file: #secret", `we"ird: #pass`} {
		if got := c.Targets[i].MySQL().Passwd; got != want {
			t.Errorf("targets[%d] password = %q; want %q", i, got, want)
		}
	}
	if got := len(c.Secrets()); got != 3 {
		t.Errorf("Secrets() has %d entries; want 3", got)
	}
}

func TestDollarEscape(t *testing.T) {
	c, err := Parse([]byte("targets: [{name: a, host: db, user: probe, password: \"pa$$word\"}]"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Targets[0].MySQL().Passwd; got != "pa$word" {
		t.Errorf("password = %q; want pa$word", got)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	env := map[string]string{"PROBE_PASSWORD": "x"}
	c, err := LoadFile(filepath.Join("..", "config.example.yaml"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if len(c.Targets) != 1 || c.Targets[0].Write == nil {
		t.Errorf("example config decoded as %+v", c.Targets)
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, func(string) string { return "v" })
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error %T %v is not a *config.Error", err, err)
			}
			return
		}
		if len(c.Targets) == 0 {
			t.Fatal("valid config without targets")
		}
		for i := range c.Targets {
			if c.Targets[i].EffectiveInterval() < MinInterval {
				t.Fatalf("targets[%d] interval %v below minimum", i, c.Targets[i].EffectiveInterval())
			}
			if c.Targets[i].MySQL() == nil {
				t.Fatalf("targets[%d] has no driver config", i)
			}
		}
	})
}

func TestEnvInNonStringField(t *testing.T) {
	c, err := Parse([]byte("targets: [{name: a, host: db, user: probe, port: \"${PORT}\"}]"), func(string) string { return "3307" })
	if err != nil {
		t.Fatal(err)
	}
	if _, p := c.Targets[0].HostPort(); p != 3307 {
		t.Errorf("port = %d; want 3307", p)
	}
}

func TestEnvValueStaysString(t *testing.T) {
	c, err := Parse([]byte(`targets: [{name: a, host: db, user: probe, password: "${PW}"}]`), func(string) string { return "null" })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Targets[0].MySQL().Passwd; got != "null" {
		t.Errorf("password = %q; want the literal \"null\" from the environment", got)
	}
}

func TestGreenSecrets(t *testing.T) {
	c, err := Parse([]byte(`targets: [{name: a, host: db, user: probe, password: p1, write: {table: hb}, bluegreen: true, green: {host: g, user: probe, password: p2}}]`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Secrets(), ","); got != "p1,p2" {
		t.Errorf("Secrets() = %q; want p1,p2", got)
	}
	if !c.Targets[0].BlueGreen || c.Targets[0].Green.MySQL().Addr != "g:3306" {
		t.Errorf("bluegreen/green = %v/%v", c.Targets[0].BlueGreen, c.Targets[0].Green.MySQL().Addr)
	}
}

// TestExampleShowsEveryOption checks that config.example.yaml mentions
// every key the configuration accepts (set or commented out), so the
// example stays the full reference as options are added.
func TestExampleShowsEveryOption(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	example := string(b)
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		if _, custom := reflect.PointerTo(typ).MethodByName("UnmarshalYAML"); custom {
			return
		}
		seen[typ] = true
		for name, ft := range yamlFields(typ) {
			if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(name) + `:`).MatchString(example) {
				t.Errorf("config.example.yaml does not show %s", join(path, name))
			}
			walk(ft, join(path, name))
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

// TestDollarErrors: a "$" that is neither "$$" nor a complete ${VAR} is an
// error naming the field, never literal text: "$PW" meant ${PW}, and taking
// it literally probes with a wrong password (or header) without a word.
// The message must not quote the value, which may be a secret.
func TestDollarErrors(t *testing.T) {
	env := func(k string) string { return map[string]string{"PW": "s3cretpw"}[k] }
	tests := []struct {
		value string
		want  string
	}{
		{"$PW", `targets[0].password: "$" at byte 1 is neither "$$" (a literal "$") nor ${VAR}`},
		{"ab${PW", `targets[0].password: "${" at byte 3 is not closed by "}"`},
		{"${}", `targets[0].password: "${" at byte 1 names no variable (empty braces)`},
		{"x$", `targets[0].password: "$" at byte 2 is neither`},
		{"${P-W}", `targets[0].password: "${" at byte 1: variable names are letters, digits and _`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			_, err := Parse([]byte(`targets: [{name: a, host: db, user: probe, password: '`+tt.value+`'}]`), env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(password %q) = %v; want an error containing %q", tt.value, err, tt.want)
			}
			if strings.Contains(err.Error(), tt.value) || strings.Contains(err.Error(), "s3cretpw") {
				t.Errorf("error quotes the value: %v", err)
			}
		})
	}
	for _, ok := range []struct{ value, want string }{{"a$$b", "a$b"}, {"${PW}$$", "s3cretpw$"}, {"$$PW", "$PW"}} {
		c, err := Parse([]byte(`targets: [{name: a, host: db, user: probe, password: '`+ok.value+`'}]`), env)
		if err != nil {
			t.Fatalf("Parse(password %q): %v", ok.value, err)
		}
		if got := c.Targets[0].MySQL().Passwd; got != ok.want {
			t.Errorf("password %q = %q; want %q", ok.value, got, ok.want)
		}
	}
}

// TestDangerousDSNParameters: DSN parameters that hand the server more
// than a probe needs are refused with the field path and the parameter.
// allowAllFiles let a rogue server (or a man in the middle) read any file
// dbprobe can read through LOAD DATA LOCAL INFILE, the password file
// included.
func TestDangerousDSNParameters(t *testing.T) {
	tests := []struct {
		params string
		want   string // "" means accepted
	}{
		{"allowAllFiles=true", `targets[0].dsn: parameter allowAllFiles=true is refused`},
		{"allowAllFiles=1", `targets[0].dsn: parameter allowAllFiles=true is refused`},
		{"allowOldPasswords=true", `targets[0].dsn: parameter allowOldPasswords=true is refused`},
		{"allowCleartextPasswords=true", `targets[0].dsn: parameter allowCleartextPasswords=true is refused without tls=true`},
		{"allowCleartextPasswords=true&tls=preferred", `targets[0].dsn: parameter allowCleartextPasswords=true is refused without tls=true`},
		{"allowCleartextPasswords=true&tls=skip-verify", `targets[0].dsn: parameter allowCleartextPasswords=true is refused without tls=true`},
		{"multiStatements=true", `targets[0].dsn: parameter multiStatements=true is refused`},
		{"allowCleartextPasswords=true&tls=true", ""},
		{"allowAllFiles=false&timeout=5s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			_, err := Parse([]byte(`targets: [{name: a, dsn: "probe:s3cretpw@tcp(db:3306)/x?`+tt.params+`"}]`), noEnv)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Parse(?%s) = %v; want it accepted", tt.params, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Parse(?%s) = %v; want an error containing %q", tt.params, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cretpw") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
	_, err := Parse([]byte(`targets: [{name: a, host: db, user: probe, write: {table: hb}, green: {dsn: "probe:pw@tcp(g:3306)/x?allowAllFiles=true"}}]`), noEnv)
	if err == nil || !strings.Contains(err.Error(), "targets[0].green.dsn: parameter allowAllFiles=true is refused") {
		t.Errorf("green dsn with allowAllFiles: %v; want it refused", err)
	}
}

// TestConfigErrorsDoNotEchoSecrets: a secret that lands in the wrong field
// (a port, a DSN parameter) or makes a DSN unparsable must not be quoted
// back in the error, which goes to a terminal, a CI log or a ticket.
func TestConfigErrorsDoNotEchoSecrets(t *testing.T) {
	const pw = "s3cretpw"
	env := func(k string) string { return map[string]string{"PW": pw, "ONE": "x"}[k] }
	tests := []struct {
		name, src, want string
	}{
		{"port from a secret", `targets: [{name: a, host: db, user: probe, port: "${PW}"}]`, "targets[0].port: must be an integer"},
		{"dsn parameter from a secret", `targets: [{name: a, dsn: "probe:pw@tcp(db:3306)/x?timeout=${PW}"}]`, "targets[0].dsn: not a valid DSN"},
		{"dsn bool from a secret", `targets: [{name: a, dsn: "probe:pw@tcp(db:3306)/x?parseTime=${PW}"}]`, "targets[0].dsn: not a valid DSN"},
		{"literal dsn password in a parameter", `targets: [{name: a, dsn: "probe:` + pw + `@tcp(db:3306)/x?parseTime=` + pw + `"}]`, "targets[0].dsn: not a valid DSN"},
		{"interval from a secret", `interval: "${PW}"`, "interval: not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v; want an error containing %q", err, tt.want)
			}
			for n := 3; n <= len(pw); n++ {
				if strings.Contains(err.Error(), pw[:n]) {
					t.Fatalf("error echoes %d characters of the secret: %v", n, err)
				}
			}
		})
	}
	// A one-character environment value is masked where it stands, not
	// scrubbed from every word of the message.
	_, err := Parse([]byte(`targets: [{name: a, host: db, user: probe, port: "${ONE}"}]`), env)
	if err == nil || !strings.Contains(err.Error(), "targets[0].port: must be an integer") {
		t.Errorf("Parse(port: ${ONE}) = %v; want the field and the message intact", err)
	}
}

// TestOverlapBound: a timeout much longer than the interval means
// thousands of probes of one stream in flight against a server that hangs
// (interval 10ms with timeout 5m: 30,001). Such a configuration is refused,
// naming the field and both values.
func TestOverlapBound(t *testing.T) {
	tests := []struct{ src, want string }{
		{"interval: 10ms\ntimeout: 5m\ntargets: [{name: a, host: db, user: probe}]",
			"timeout: 5m0s with interval 10ms lets 30000 probes of one stream overlap"},
		{"targets: [{name: a, host: db, user: probe, interval: 10ms, timeout: 5m}]",
			"targets[0].timeout: 5m0s with interval 10ms lets 30000 probes of one stream overlap"},
		{"timeout: 1m\ntargets: [{name: a, host: db, user: probe, interval: 10ms}]",
			"targets[0].interval: 10ms with timeout 1m0s lets 6000 probes of one stream overlap"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), noEnv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want an error containing %q", tt.src, err, tt.want)
		}
	}
	if _, err := Parse([]byte("interval: 10ms\ntimeout: 10s\ntargets: [{name: a, host: db, user: probe}]"), noEnv); err != nil {
		t.Errorf("interval 10ms with timeout 10s (1000 in flight) refused: %v", err)
	}
}
