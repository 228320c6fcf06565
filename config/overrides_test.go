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
