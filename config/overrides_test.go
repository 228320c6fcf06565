package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOverridesWinAndTakeTheBlame(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dbprobe.yaml")
	body := "targets: [{name: a, host: 127.0.0.1, user: u}]\nhttp: {listen: 127.0.0.1:9999}\nlog: {level: debug, format: json}\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, os.Getenv, Overrides{
		Set:       map[string]bool{"--web.listen-address": true, "--log.level": true},
		WebListen: "", LogLevel: "warn", LogFormat: "ignored: not set",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != "" || c.Log.Level != "warn" || c.Log.Format != "json" {
		t.Errorf("listen %q level %q format %q, want \"\" warn json", c.HTTP.Listen, c.Log.Level, c.Log.Format)
	}
	_, err = Load(p, os.Getenv, Overrides{Set: map[string]bool{"--log.format": true}, LogFormat: "xml"})
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Fields) != 1 || ce.Fields[0].Path != "--log.format" {
		t.Fatalf("err = %v, want one error naming --log.format", err)
	}
}

// Observers of one switchover share a run id given on the command line;
// a bad one is blamed on the flag.
func TestRunIDOverride(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dbprobe.yaml")
	if err := os.WriteFile(p, []byte("run_id: from-file\ntargets: [{name: a, host: 127.0.0.1, user: u}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, os.Getenv, Overrides{Set: map[string]bool{"--run-id": true}, RunID: "switchover-42"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RunID != "switchover-42" {
		t.Errorf("run_id %q, want the flag's switchover-42", c.RunID)
	}
	_, err = Load(p, os.Getenv, Overrides{Set: map[string]bool{"--run-id": true}, RunID: "bad id!"})
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Fields) != 1 || ce.Fields[0].Path != "--run-id" {
		t.Fatalf("err = %v, want one error naming --run-id", err)
	}
}

// --web.enable-lifecycle turns the reload endpoint on over the file, and
// --web.enable-lifecycle=false off over a file that turns it on.
func TestEnableLifecycleOverride(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dbprobe.yaml")
	tests := []struct {
		file string
		ov   Overrides
		want bool
	}{
		{"", Overrides{}, false},
		{"http: {enable_lifecycle: true}\n", Overrides{}, true},
		{"", Overrides{Set: map[string]bool{"--web.enable-lifecycle": true}, WebEnableLifecycle: true}, true},
		{"http: {enable_lifecycle: true}\n", Overrides{Set: map[string]bool{"--web.enable-lifecycle": true}}, false},
		{"http: {enable_lifecycle: true}\n", Overrides{WebEnableLifecycle: false}, true},
	}
	for _, tc := range tests {
		if err := os.WriteFile(p, []byte("targets: [{name: a, host: 127.0.0.1, user: u}]\n"+tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, os.Getenv, tc.ov)
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTP.EnableLifecycle != tc.want {
			t.Errorf("file %q, flags %v: enable_lifecycle %v, want %v", tc.file, tc.ov.Set, c.HTTP.EnableLifecycle, tc.want)
		}
	}
}
