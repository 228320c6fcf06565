package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// minimalHTTP is a valid configuration the HTTP and notify cases add to.
const minimalHTTP = `
targets:
  - name: db
    host: 127.0.0.1
    user: probe
`

func TestHTTPDefaults(t *testing.T) {
	c, err := Parse([]byte(minimalHTTP), noEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := c.HTTP.Listen, DefaultListen; got != want {
		t.Errorf("http.listen = %q, want %q", got, want)
	}
	if got := c.HTTP.WebConfigFile; got != "" {
		t.Errorf("http.web_config_file = %q, want empty", got)
	}
	if c.HTTP.EnableLifecycle {
		t.Error("http.enable_lifecycle = true, want false: POST /-/reload is opt-in")
	}
	if got := len(c.Notify.Webhooks); got != 0 {
		t.Errorf("notify.webhooks has %d entries, want none", got)
	}
}

func TestHTTPAndNotifyValid(t *testing.T) {
	webCfg := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(webCfg, []byte("basic_auth_users: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := minimalHTTP + `
http:
  listen: ""
  web_config_file: ` + webCfg + `
notify:
  webhooks:
    - url: https://hooks.example.com/services/T000/B000/XXXXXXXX
      headers:
        Authorization: Bearer ${HOOK_TOKEN}
    - name: pager
      url: http://127.0.0.1:9999/hook
      timeout: 2s
      retry_for: 0s
      queue_size: 10
`
	getenv := func(k string) string {
		if k == "HOOK_TOKEN" {
			return "s3cr3t-token-value"
		}
		return ""
	}
	c, err := Parse([]byte(src), getenv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.HTTP.Listen != "" {
		t.Errorf("http.listen = %q, want empty (server off)", c.HTTP.Listen)
	}
	w0, w1 := c.Notify.Webhooks[0], c.Notify.Webhooks[1]
	if w0.Name != "webhook0" || w0.Timeout.Duration != DefaultWebhookTimeout ||
		w0.RetryFor.Duration != DefaultWebhookRetryFor || w0.QueueSize != DefaultWebhookQueueSize {
		t.Errorf("webhooks[0] defaults = %q %v %v %d, want webhook0 %v %v %d", w0.Name, w0.Timeout.Duration,
			w0.RetryFor.Duration, w0.QueueSize, DefaultWebhookTimeout, DefaultWebhookRetryFor, DefaultWebhookQueueSize)
	}
	if w1.Name != "pager" || w1.Timeout.Duration != 2*time.Second || w1.RetryFor.Duration != 0 || w1.QueueSize != 10 {
		t.Errorf("webhooks[1] = %q %v %v %d, want pager 2s 0s 10", w1.Name, w1.Timeout.Duration, w1.RetryFor.Duration, w1.QueueSize)
	}
	secrets := c.Secrets()
	for _, s := range []string{"Bearer s3cr3t-token-value", w0.URL, w1.URL} {
		if !slices.Contains(secrets, s) {
			t.Errorf("Secrets() lacks %q", s)
		}
	}
}

func TestHTTPAndNotifyInvalid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		path  string // field path the error must name
		leaks string // text the error must not contain
	}{
		{"listen without port", "http: {listen: 127.0.0.1}", "http.listen", ""},
		{"listen bad port", "http: {listen: ':99999'}", "http.listen", ""},
		{"web config missing", "http: {web_config_file: /nonexistent/web.yml}", "http.web_config_file", ""},
		{"webhook without url", "notify: {webhooks: [{name: a}]}", "notify.webhooks[0].url", ""},
		{"webhook bad scheme", "notify: {webhooks: [{url: 'ftp://user:hunter22@example.com/x'}]}", "notify.webhooks[0].url", "hunter22"},
		{"webhook no host", "notify: {webhooks: [{url: 'https:///path'}]}", "notify.webhooks[0].url", ""},
		{"webhook bad header name", "notify: {webhooks: [{url: 'https://h/x', headers: {'Bad Name': v}}]}", "notify.webhooks[0].headers", ""},
		{"webhook header newline", "notify: {webhooks: [{url: 'https://h/x', headers: {X-Token: \"abc\\r\\nX-Evil: 1\"}}]}", "notify.webhooks[0].headers.X-Token", "abc"},
		{"webhook timeout too short", "notify: {webhooks: [{url: 'https://h/x', timeout: 1ms}]}", "notify.webhooks[0].timeout", ""},
		{"webhook retry_for not a duration", "notify: {webhooks: [{url: 'https://h/x', retry_for: soon}]}", "notify.webhooks[0].retry_for", ""},
		{"webhook queue negative", "notify: {webhooks: [{url: 'https://h/x', queue_size: -1}]}", "notify.webhooks[0].queue_size", ""},
		{"webhook duplicate name", "notify: {webhooks: [{name: a, url: 'https://h/x'}, {name: a, url: 'https://h/y'}]}", "notify.webhooks[1].name", ""},
		{"webhook bad name", "notify: {webhooks: [{name: 'a b', url: 'https://h/x'}]}", "notify.webhooks[0].name", ""},
		{"webhook unknown key", "notify: {webhooks: [{url: 'https://h/x', retries: 3}]}", "notify.webhooks[0].retries", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimalHTTP+tc.yaml+"\n"), noEnv)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error = %v, want *Error", err)
			}
			var paths []string
			for _, f := range ce.Fields {
				paths = append(paths, f.Path)
			}
			if !slices.Contains(paths, tc.path) {
				t.Errorf("error paths = %q, want one to be %q (error: %v)", paths, tc.path, err)
			}
			if tc.leaks != "" && strings.Contains(err.Error(), tc.leaks) {
				t.Errorf("error %q quotes the secret %q", err, tc.leaks)
			}
		})
	}
}
