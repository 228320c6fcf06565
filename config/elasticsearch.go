package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Elasticsearch configures the Elasticsearch sink: where to ship, how to
// authenticate, which data stream to write, and how the shipper batches,
// retries and trims the journal behind it. Validation fills every zero
// field with its default, so code reading a validated config never
// re-implements defaults. docs/elasticsearch.md explains every option.
type Elasticsearch struct {
	// Addresses are the http(s) URLs of the cluster's nodes.
	Addresses []string `yaml:"addresses"`

	// At most one way to authenticate: an API key (the base64 "encoded"
	// value Elasticsearch returns, or "id:api_key"), a user and password
	// (or password_file), or a service token.
	APIKey       string `yaml:"api_key"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	ServiceToken string `yaml:"service_token"`

	// CAFile is a PEM file of the CA that signed the cluster's certificate;
	// CAFingerprint the SHA-256 of a certificate in its chain, as printed
	// by Elasticsearch on first start (hex, colons allowed).
	CAFile        string `yaml:"ca_file"`
	CAFingerprint string `yaml:"ca_fingerprint"`

	// Namespace is the data_stream.namespace part of the data stream name
	// logs-dbprobe-<namespace>. Default "default".
	Namespace string `yaml:"namespace"`
	// Setup installs the ILM policy, component and index templates and the
	// data stream before shipping. Default true.
	Setup *bool `yaml:"setup"`
	// DeleteAfter adds an ILM delete phase: backing indices are deleted this
	// long after rollover. Zero (the default) keeps data forever.
	DeleteAfter Duration `yaml:"delete_after"`

	// A bulk request carries at most BatchEvents events and BatchBytes
	// bytes of documents. When caught up, the shipper looks for new events
	// every FlushInterval.
	BatchEvents   int      `yaml:"batch_events"`
	BatchBytes    ByteSize `yaml:"batch_bytes"`
	FlushInterval Duration `yaml:"flush_interval"`
	// Timeout bounds one request to the cluster.
	Timeout Duration `yaml:"timeout"`
	// Retries wait BackoffMin, doubling up to BackoffMax, with jitter.
	BackoffMin Duration `yaml:"backoff_min"`
	BackoffMax Duration `yaml:"backoff_max"`
	// Compress gzips request bodies (worth it over slow links; costs CPU).
	Compress bool `yaml:"compress"`

	// DeadLetter is the JSON-lines file where documents Elasticsearch
	// refuses for good (mapping errors) are written with the reason.
	// Default: elasticsearch-dead-letter.jsonl in the journal directory.
	DeadLetter string `yaml:"dead_letter"`

	// resolved by validate
	password string
}

// Defaults of the Elasticsearch sink.
const (
	DefaultESNamespace     = "default"
	DefaultESBatchEvents   = 5000
	DefaultESBatchBytes    = 5 << 20
	DefaultESFlushInterval = time.Second
	DefaultESTimeout       = 30 * time.Second
	DefaultESBackoffMin    = 500 * time.Millisecond
	DefaultESBackoffMax    = 30 * time.Second
	// MaxESBatchBytes stays well under Elasticsearch's default
	// http.max_content_length of 100mb.
	MaxESBatchBytes = 50 << 20
)

// Data stream naming (ECS data_stream.*): logs-<dataset>-<namespace>. Probe
// events (event.dataset dbprobe.probe) and findings (dbprobe.finding) share
// the one data stream, so its dataset is the common "dbprobe".
const (
	ESDataStreamType    = "logs"
	ESDataStreamDataset = "dbprobe"
)

// namespaceRE follows the data stream naming rules (lowercase, no '-', no
// characters Elasticsearch forbids in index names), kept to the safe subset.
var namespaceRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,99}$`)

// DataStream is the name of the data stream events are shipped to.
func (s *Elasticsearch) DataStream() string {
	return ESDataStreamType + "-" + ESDataStreamDataset + "-" + s.Namespace
}

// SetupEnabled reports whether the shipper installs templates and the data
// stream itself.
func (s *Elasticsearch) SetupEnabled() bool { return s.Setup == nil || *s.Setup }

// BasicAuth returns the user and password for HTTP basic authentication,
// with password_file already read; both empty when another method is used.
func (s *Elasticsearch) BasicAuth() (user, password string) {
	if s.password != "" {
		return s.Username, s.password
	}
	return s.Username, s.Password
}

// EncodedAPIKey returns the API key in the form the Authorization header
// wants (base64 of "id:api_key"), whichever form the user wrote.
func (s *Elasticsearch) EncodedAPIKey() string {
	if strings.Contains(s.APIKey, ":") {
		return base64.StdEncoding.EncodeToString([]byte(s.APIKey))
	}
	return s.APIKey
}

// Fingerprint returns CAFingerprint as lowercase hex without separators.
func (s *Elasticsearch) Fingerprint() string {
	return strings.ToLower(strings.ReplaceAll(s.CAFingerprint, ":", ""))
}

// secrets returns the credentials that must never appear in any output.
func (s *Elasticsearch) secrets() []string {
	var out []string
	_, pw := s.BasicAuth()
	for _, v := range []string{pw, s.APIKey, s.EncodedAPIKey(), s.ServiceToken} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (s *Elasticsearch) validate(e *errs, path string) {
	p := func(field string) string { return path + "." + field }
	if len(s.Addresses) == 0 {
		e.add(p("addresses"), "at least one address is required (e.g. https://localhost:9200)")
	}
	for i, a := range s.Addresses {
		ap := fmt.Sprintf("%s[%d]", p("addresses"), i)
		u, err := url.Parse(a)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			e.add(ap, "must be an http(s) URL (got %q)", a)
		case u.User != nil:
			// Never quote it: the URL holds a credential.
			e.add(ap, "must not contain credentials; use username/password, api_key or service_token")
		case u.RawQuery != "" || u.Fragment != "":
			e.add(ap, "must not have a query or fragment (got %q)", a)
		}
	}
	s.validateAuth(e, p)
	if s.CAFile != "" && s.CAFingerprint != "" {
		e.add(p("ca_fingerprint"), "give either ca_file or ca_fingerprint, not both")
	}
	if s.CAFile != "" {
		if pem, err := os.ReadFile(s.CAFile); err != nil {
			e.add(p("ca_file"), "cannot read %q: %v", s.CAFile, unwrapPathErr(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			e.add(p("ca_file"), "no PEM certificate in %q", s.CAFile)
		}
	}
	if s.CAFingerprint != "" {
		if b, err := hex.DecodeString(s.Fingerprint()); err != nil || len(b) != 32 {
			e.add(p("ca_fingerprint"), "must be a SHA-256 fingerprint: 64 hex digits, colons allowed (got %q)", s.CAFingerprint)
		}
	}
	if s.Namespace == "" {
		s.Namespace = DefaultESNamespace
	}
	if !namespaceRE.MatchString(s.Namespace) {
		e.add(p("namespace"), "must be 1-100 lowercase letters, digits or '_', not starting with '_' (got %q)", s.Namespace)
	}
	if s.Setup == nil {
		t := true
		s.Setup = &t
	}
	if s.DeleteAfter.err != nil || s.DeleteAfter.Duration != 0 {
		s.DeleteAfter.check(e, p("delete_after"), time.Hour, 0)
	}
	if s.BatchEvents == 0 {
		s.BatchEvents = DefaultESBatchEvents
	}
	if s.BatchEvents < 1 || s.BatchEvents > 100000 {
		e.add(p("batch_events"), "must be 1-100000 (got %d)", s.BatchEvents)
	}
	defaultSize(&s.BatchBytes, DefaultESBatchBytes)
	s.BatchBytes.check(e, p("batch_bytes"), 1<<10)
	if s.BatchBytes.err == nil && s.BatchBytes.Bytes > MaxESBatchBytes {
		e.add(p("batch_bytes"), "must be at most 50MiB (got %q)", s.BatchBytes.raw)
	}
	defaultDuration(&s.FlushInterval, DefaultESFlushInterval)
	s.FlushInterval.check(e, p("flush_interval"), 10*time.Millisecond, time.Minute)
	defaultDuration(&s.Timeout, DefaultESTimeout)
	s.Timeout.check(e, p("timeout"), 100*time.Millisecond, 10*time.Minute)
	defaultDuration(&s.BackoffMin, DefaultESBackoffMin)
	s.BackoffMin.check(e, p("backoff_min"), time.Millisecond, time.Minute)
	defaultDuration(&s.BackoffMax, DefaultESBackoffMax)
	s.BackoffMax.check(e, p("backoff_max"), time.Millisecond, time.Hour)
	if s.BackoffMin.err == nil && s.BackoffMax.err == nil && s.BackoffMax.Duration < s.BackoffMin.Duration {
		e.add(p("backoff_max"), "must be at least backoff_min (%v) (got %v)", s.BackoffMin.Duration, s.BackoffMax.Duration)
	}
}

func (s *Elasticsearch) validateAuth(e *errs, p func(string) string) {
	var methods []string
	if s.APIKey != "" {
		methods = append(methods, "api_key")
	}
	if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
		methods = append(methods, "username/password")
	}
	if s.ServiceToken != "" {
		methods = append(methods, "service_token")
	}
	if len(methods) > 1 {
		e.add(p("api_key"), "give one way to authenticate, not %s", strings.Join(methods, " and "))
	}
	if s.APIKey != "" && !strings.Contains(s.APIKey, ":") {
		if _, err := base64.StdEncoding.DecodeString(s.APIKey); err != nil {
			e.add(p("api_key"), "must be the base64 \"encoded\" key or \"id:api_key\"")
		}
	}
	if s.Password != "" && s.PasswordFile != "" {
		e.add(p("password_file"), "give either password or password_file, not both")
	}
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			e.add(p("password_file"), "cannot read %q: %v", s.PasswordFile, unwrapPathErr(err))
		}
		s.password = strings.TrimRight(string(b), "\r\n")
	}
	if (s.Password != "" || s.PasswordFile != "") && s.Username == "" {
		e.add(p("username"), "is required with a password")
	}
	if s.Username != "" && s.Password == "" && s.PasswordFile == "" {
		e.add(p("password"), "is required with a username (or give password_file)")
	}
}

// defaultDuration fills a duration the file did not set.
func defaultDuration(d *Duration, v time.Duration) {
	if d.raw == "" && d.Duration == 0 {
		d.Duration = v
	}
}

func defaultSize(b *ByteSize, v int64) {
	if b.raw == "" && b.Bytes == 0 {
		b.Bytes = v
	}
}

// Environment variables ElasticsearchFromEnv reads.
const (
	EnvESAPIKey        = "DBPROBE_ES_API_KEY"
	EnvESUsername      = "DBPROBE_ES_USERNAME"
	EnvESPassword      = "DBPROBE_ES_PASSWORD"
	EnvESServiceToken  = "DBPROBE_ES_SERVICE_TOKEN"
	EnvESCAFile        = "DBPROBE_ES_CA_FILE"
	EnvESCAFingerprint = "DBPROBE_ES_CA_FINGERPRINT"
)

// ElasticsearchFromEnv is the connection part of the sink's configuration
// for commands that read from Elasticsearch (dbprobe report --es): the
// address flagged by flag, and credentials and trust from the environment
// (EnvESAPIKey, EnvESUsername and EnvESPassword, EnvESServiceToken,
// EnvESCAFile or EnvESCAFingerprint), so secrets stay out of the process
// list. Problems come back as an *Error naming the flag or the variable.
func ElasticsearchFromEnv(flag, addr string, getenv func(string) string) (*Elasticsearch, error) {
	s := &Elasticsearch{
		Addresses:     []string{addr},
		APIKey:        getenv(EnvESAPIKey),
		Username:      getenv(EnvESUsername),
		Password:      getenv(EnvESPassword),
		ServiceToken:  getenv(EnvESServiceToken),
		CAFile:        getenv(EnvESCAFile),
		CAFingerprint: getenv(EnvESCAFingerprint),
	}
	var e errs
	s.validate(&e, "es")
	names := map[string]string{
		"es.addresses[0]": flag, "es.api_key": EnvESAPIKey, "es.username": EnvESUsername,
		"es.password": EnvESPassword, "es.service_token": EnvESServiceToken,
		"es.ca_file": EnvESCAFile, "es.ca_fingerprint": EnvESCAFingerprint,
	}
	for _, f := range e.list {
		if n, ok := names[f.Path]; ok {
			f.Path = n
		}
	}
	if err := e.err(""); err != nil {
		return nil, err
	}
	return s, nil
}
