package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultListen is where dbprobe serves HTTP unless told otherwise: loopback
// only, so nothing is exposed before the user decides to, on a port outside
// the 9100-9999 block the Prometheus wiki hands out to exporters and outside
// Prometheus' own 9090-9094 (docs/http.md says more).
const DefaultListen = "127.0.0.1:8306"

// HTTP configures dbprobe's HTTP server (metrics, health, live report).
type HTTP struct {
	// Listen is host:port to serve on; empty turns the server off.
	Listen string `yaml:"listen"`
	// WebConfigFile is a Prometheus web configuration file (TLS and basic
	// auth, exporter-toolkit format); empty serves plain HTTP.
	WebConfigFile string `yaml:"web_config_file"`
	// EnableLifecycle turns on POST /-/reload. Off by default, as
	// Prometheus' --web.enable-lifecycle: without a web configuration
	// anyone who reaches the port could otherwise make dbprobe re-read its
	// file at will. SIGHUP reloads either way.
	EnableLifecycle bool `yaml:"enable_lifecycle"`
}

// DefaultHTTP returns the HTTP defaults.
func DefaultHTTP() HTTP { return HTTP{Listen: DefaultListen} }

func (h *HTTP) validate(e *errs, path string) {
	if h.Listen != "" {
		checkListen(e, path+".listen", h.Listen)
	}
	if h.WebConfigFile != "" {
		if _, err := os.ReadFile(h.WebConfigFile); err != nil {
			e.add(path+".web_config_file", "cannot read %q: %v", h.WebConfigFile, unwrapPathErr(err))
		}
	}
}

func checkListen(e *errs, path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		e.add(path, "must be host:port, e.g. 127.0.0.1:8306 or :8306 for every interface (got %q)", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		e.add(path, "port must be 0-65535 (got %q)", addr)
	}
}

// Webhook defaults and limits.
const (
	DefaultWebhookTimeout   = 5 * time.Second
	DefaultWebhookRetryFor  = 10 * time.Minute
	DefaultWebhookQueueSize = 1000
	maxWebhookQueueSize     = 1000000
)

// Notify configures transition notifications.
type Notify struct {
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one receiver of transition notifications. Its URL and header
// values may carry credentials: they are never logged nor quoted in errors.
type Webhook struct {
	// Name tells webhooks apart in logs and metrics; defaults to "webhook<i>".
	Name    string            `yaml:"name"`
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one POST.
	Timeout Duration `yaml:"timeout"`
	// RetryFor is how long one notification is retried before it is dropped.
	RetryFor Duration `yaml:"retry_for"`
	// QueueSize is how many notifications may wait; when full the oldest is
	// dropped.
	QueueSize int `yaml:"queue_size"`
}

func (n *Notify) validate(e *errs, path string) {
	names := map[string]int{}
	for i := range n.Webhooks {
		w := &n.Webhooks[i]
		p := fmt.Sprintf("%s.webhooks[%d]", path, i)
		if w.Name == "" {
			w.Name = fmt.Sprintf("webhook%d", i)
		} else if !nameRE.MatchString(w.Name) {
			e.add(p+".name", "must be 1-63 letters, digits, '.', '_' or '-' (got %q)", w.Name)
		}
		if j, dup := names[w.Name]; dup {
			e.add(p+".name", "%q is already the name of %s.webhooks[%d]", w.Name, path, j)
		}
		names[w.Name] = i
		w.validate(e, p)
	}
}

func (w *Webhook) validate(e *errs, p string) {
	// Messages never quote the URL or header values: they may hold tokens.
	switch u, err := url.Parse(w.URL); {
	case w.URL == "":
		e.add(p+".url", "is required")
	case err != nil:
		e.add(p+".url", "is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		e.add(p+".url", "must start with http:// or https:// (got scheme %q)", u.Scheme)
	case u.Host == "":
		e.add(p+".url", "has no host")
	}
	for k, v := range w.Headers {
		if !isToken(k) {
			e.add(p+".headers", "%q is not a valid header name", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			e.add(p+".headers."+k, "value must be one line")
		}
	}
	if w.Timeout == (Duration{}) {
		w.Timeout.Duration = DefaultWebhookTimeout
	}
	w.Timeout.check(e, p+".timeout", 100*time.Millisecond, time.Minute)
	if w.RetryFor == (Duration{}) {
		w.RetryFor.Duration = DefaultWebhookRetryFor
	}
	w.RetryFor.check(e, p+".retry_for", 0, 24*time.Hour)
	if w.QueueSize == 0 {
		w.QueueSize = DefaultWebhookQueueSize
	}
	if w.QueueSize < 1 || w.QueueSize > maxWebhookQueueSize {
		e.add(p+".queue_size", "must be 1-%d (got %d)", maxWebhookQueueSize, w.QueueSize)
	}
}

// isToken reports whether s is an HTTP header field name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c > 0x7e || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// secrets returns the webhook strings that must never appear in output: the
// URLs (Slack-style URLs are bearer tokens) and the header values. Short
// ones are safe to list: package redact masks them only where they stand
// alone.
func (n *Notify) secrets() []string {
	var out []string
	for _, w := range n.Webhooks {
		out = append(out, w.URL)
		for _, v := range w.Headers {
			out = append(out, v)
		}
	}
	return out
}
