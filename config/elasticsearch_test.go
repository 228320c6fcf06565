package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseES(t *testing.T, es string) (*Config, error) {
	t.Helper()
	src := "targets: [{name: db, host: 127.0.0.1, user: probe}]\nsinks:\n  elasticsearch:\n"
	for _, l := range strings.Split(strings.Trim(es, "\n"), "\n") {
		src += "    " + l + "\n"
	}
	return Parse([]byte(src), func(k string) string {
		if k == "ES_KEY" {
			return "aWQ6c2VjcmV0a2V5"
		}
		return ""
	})
}

func TestElasticsearchDefaults(t *testing.T) {
	c, err := parseES(t, `addresses: ["https://es.example:9200"]`)
	if err != nil {
		t.Fatal(err)
	}
	es := c.Sinks.Elasticsearch
	if got := es.DataStream(); got != "logs-dbprobe-default" {
		t.Errorf("DataStream() = %q; want logs-dbprobe-default", got)
	}
	if !es.SetupEnabled() {
		t.Error("SetupEnabled() = false; want the default true")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"batch_events", es.BatchEvents, DefaultESBatchEvents},
		{"batch_bytes", es.BatchBytes.Bytes, int64(DefaultESBatchBytes)},
		{"flush_interval", es.FlushInterval.Duration, DefaultESFlushInterval},
		{"timeout", es.Timeout.Duration, DefaultESTimeout},
		{"backoff_min", es.BackoffMin.Duration, DefaultESBackoffMin},
		{"backoff_max", es.BackoffMax.Duration, DefaultESBackoffMax},
		{"delete_after", es.DeleteAfter.Duration, time.Duration(0)},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v; want default %v", ck.name, ck.got, ck.want)
		}
	}

	c, err = parseES(t, `
addresses: ["http://a:9200", "http://b:9200"]
api_key: ${ES_KEY}
namespace: prod_eu
setup: false
batch_events: 100
batch_bytes: 1MiB`)
	if err != nil {
		t.Fatal(err)
	}
	es = c.Sinks.Elasticsearch
	if es.DataStream() != "logs-dbprobe-prod_eu" || es.SetupEnabled() || es.BatchBytes.Bytes != 1<<20 {
		t.Errorf("overrides not applied: %+v", es)
	}
	found := false
	for _, s := range c.Secrets() {
		found = found || s == "aWQ6c2VjcmV0a2V5"
	}
	if !found {
		t.Errorf("Secrets() = %v; want the API key among them", c.Secrets())
	}
}

func TestElasticsearchValidation(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cretpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, es string
		want     []string
	}{
		{"no addresses", `namespace: x`, []string{"sinks.elasticsearch.addresses: at least one address is required"}},
		{"not a URL", `addresses: ["foo"]`, []string{`sinks.elasticsearch.addresses[0]: must be an http(s) URL (got "foo")`}},
		{"wrong scheme", `addresses: ["http://ok:9200", "ftp://es:9200"]`, []string{`sinks.elasticsearch.addresses[1]: must be an http(s) URL (got "ftp://es:9200")`}},
		{"credentials in URL", `addresses: ["https://elastic:s3cretpw@es:9200"]`, []string{"sinks.elasticsearch.addresses[0]: must not contain credentials"}},
		{"two auth methods", "addresses: [\"http://es:9200\"]\napi_key: aWQ6a2V5\nusername: u\npassword: s3cretpw", []string{"sinks.elasticsearch.api_key: give one way to authenticate, not api_key and username/password"}},
		{"api key not base64", "addresses: [\"http://es:9200\"]\napi_key: \"not base64!\"", []string{`sinks.elasticsearch.api_key: must be the base64 "encoded" key or "id:api_key"`}},
		{"user without password", "addresses: [\"http://es:9200\"]\nusername: u", []string{"sinks.elasticsearch.password: is required with a username"}},
		{"password without user", "addresses: [\"http://es:9200\"]\npassword_file: " + pw, []string{"sinks.elasticsearch.username: is required with a password"}},
		{"missing password file", "addresses: [\"http://es:9200\"]\nusername: u\npassword_file: /nonexistent/pw", []string{`sinks.elasticsearch.password_file: cannot read "/nonexistent/pw"`}},
		{"bad fingerprint", "addresses: [\"https://es:9200\"]\nca_fingerprint: abc", []string{`sinks.elasticsearch.ca_fingerprint: must be a SHA-256 fingerprint: 64 hex digits, colons allowed (got "abc")`}},
		{"ca file and fingerprint", "addresses: [\"https://es:9200\"]\nca_file: " + pw + "\nca_fingerprint: " + strings.Repeat("a", 64), []string{"sinks.elasticsearch.ca_fingerprint: give either ca_file or ca_fingerprint, not both"}},
		{"ca file not PEM", "addresses: [\"https://es:9200\"]\nca_file: " + pw, []string{"sinks.elasticsearch.ca_file: no PEM certificate in"}},
		{"bad namespace", "addresses: [\"http://es:9200\"]\nnamespace: Prod-1", []string{`sinks.elasticsearch.namespace: must be 1-100 lowercase letters, digits or '_'`, `"Prod-1"`}},
		{"batch too big", "addresses: [\"http://es:9200\"]\nbatch_bytes: 200MiB\nbatch_events: 0", []string{`sinks.elasticsearch.batch_bytes: must be at most 50MiB (got "200MiB")`}},
		{"negative batch", "addresses: [\"http://es:9200\"]\nbatch_events: -5", []string{"sinks.elasticsearch.batch_events: must be 1-100000 (got -5)"}},
		{"backoff upside down", "addresses: [\"http://es:9200\"]\nbackoff_min: 10s\nbackoff_max: 1s", []string{"sinks.elasticsearch.backoff_max: must be at least backoff_min (10s) (got 1s)"}},
		{"bad duration", "addresses: [\"http://es:9200\"]\nflush_interval: soon", []string{`sinks.elasticsearch.flush_interval: not a duration (got "soon"`}},
		{"short delete_after", "addresses: [\"http://es:9200\"]\ndelete_after: 1m", []string{"sinks.elasticsearch.delete_after: must be at least 1h0m0s (got 1m0s)"}},
		{"unknown key", "addresses: [\"http://es:9200\"]\nbulk_size: 5", []string{"sinks.elasticsearch.bulk_size: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseES(t, tt.es)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v; want a *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cretpw") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestElasticsearchFromEnv(t *testing.T) {
	env := map[string]string{EnvESUsername: "reader", EnvESPassword: "s3cretpw"}
	s, err := ElasticsearchFromEnv("--es", "https://es.example:9200", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if u, p := s.BasicAuth(); u != "reader" || p != "s3cretpw" || s.Addresses[0] != "https://es.example:9200" {
		t.Errorf("ElasticsearchFromEnv = %+v; want the address and the credentials from the environment", s)
	}
	env = map[string]string{EnvESPassword: "s3cretpw", EnvESCAFingerprint: "zz"}
	_, err = ElasticsearchFromEnv("--es", "es.example:9200", func(k string) string { return env[k] })
	for _, w := range []string{`--es: must be an http(s) URL (got "es.example:9200")`, EnvESUsername + ": is required with a password", EnvESCAFingerprint + ": must be a SHA-256"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ElasticsearchFromEnv error:\n%v\nwant it to contain %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), "s3cretpw") {
		t.Errorf("error leaks the password: %v", err)
	}
}
