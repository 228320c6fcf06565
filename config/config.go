// Package config holds dbprobe's configuration: the YAML schema, its
// defaults, and validation that names the field path and the bad value of
// every problem. config.example.yaml at the repository root documents every
// option.
package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-sql-driver/mysql"
	"gopkg.in/yaml.v3"

	"github.com/dbprobe/dbprobe/awsrds"
	"github.com/dbprobe/dbprobe/internal/redact"
)

// Limits enforced by validation.
const (
	MinInterval = 10 * time.Millisecond
	MaxTimeout  = 5 * time.Minute
	// MaxOverlap bounds timeout/interval: how many probes of one stream
	// may be in flight against a server that hangs. Beyond it the probes
	// of one hung target would hold thousands of descriptors.
	MaxOverlap = 1000
)

// checkOverlap refuses a timeout more than MaxOverlap intervals long; path
// and field name the setting that was given, other the one inherited.
func checkOverlap(e *errs, path string, interval, timeout time.Duration, timeoutSet bool) {
	if interval <= 0 || timeout <= 0 {
		return
	}
	n := int64(timeout / interval)
	if n <= MaxOverlap {
		return
	}
	if timeoutSet {
		e.add(path+"timeout", "%v with interval %v lets %d probes of one stream overlap against a server that hangs; at most %d may (shorten the timeout or lengthen the interval)",
			timeout, interval, n, MaxOverlap)
		return
	}
	e.add(path+"interval", "%v with timeout %v lets %d probes of one stream overlap against a server that hangs; at most %d may (lengthen the interval or shorten the timeout)",
		interval, timeout, n, MaxOverlap)
}

// Config is the whole configuration file.
type Config struct {
	RunID    string   `yaml:"run_id"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Observer Observer `yaml:"observer"`
	DNS      DNS      `yaml:"dns"`
	Targets  []Target `yaml:"targets"`
	// TargetFiles are files or directories of target lists, read after
	// targets (see targetfile.go): a fleet's hundreds of databases live
	// there rather than in this file.
	TargetFiles []string `yaml:"target_files"`
	// Groups are named defaults a target picks with group:.
	Groups map[string]Group `yaml:"groups"`
	// MetricLabels are the target label names that become Prometheus
	// labels (on dbprobe_target_info); every other label stays in events
	// and the report, so a free-form label cannot multiply series.
	MetricLabels []string `yaml:"metric_labels"`
	Sinks        Sinks    `yaml:"sinks"`
	HTTP         HTTP     `yaml:"http"`
	Notify       Notify   `yaml:"notify"`
	Log          Log      `yaml:"log"`
}

// Observer says where this prober runs; copied onto every event.
type Observer struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

// DNS chooses how endpoint names are resolved.
type DNS struct {
	// Server is "host:port" of a resolver asked directly on every probe,
	// bypassing any cache. Empty means the system resolver.
	Server string `yaml:"server"`
}

// Endpoint is how to reach one MySQL server or cluster endpoint: either a
// DSN (go-sql-driver/mysql format) or the discrete fields.
type Endpoint struct {
	DSN          string `yaml:"dsn"`
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	Database     string `yaml:"database"`
	TLS          *TLS   `yaml:"tls"`
	// Auth is "password" (the default) or "iam": an RDS IAM
	// authentication token, made from the AWS credentials, is the
	// password of every new connection. IAM needs TLS.
	Auth string `yaml:"auth"`
	// AWS says how to reach AWS for auth: iam (and the target's
	// aws_events): region and an optional role to assume.
	AWS *AWS `yaml:"aws"`

	mysql *mysql.Config       // resolved by validate
	iam   *awsrds.TokenSource // set by validate when Auth is "iam"
	aws   *aws.Config         // loaded by validate when IAM or AWS events need it
}

// AWS is how dbprobe reaches AWS: the default credential chain
// (environment, shared profile, web identity, ECS task role, instance
// profile), optionally assuming RoleARN, in Region.
type AWS struct {
	// Region defaults to AWS_REGION or the profile's region, then to the
	// region in an RDS endpoint name.
	Region  string `yaml:"region"`
	RoleARN string `yaml:"role_arn"`
}

// awsRegionRE is the shape of every AWS region name (eu-west-1,
// us-gov-west-1, cn-north-1): a misspelt region signs IAM tokens that the
// database refuses as access denied, which looks like its fault.
var awsRegionRE = regexp.MustCompile(`^[a-z]+(-[a-z]+)+-[0-9]+$`)

func (a *AWS) validate(p string, e *errs) {
	if a == nil {
		return
	}
	if a.Region != "" && !awsRegionRE.MatchString(a.Region) {
		e.add(p+".region", "must be an AWS region such as eu-west-1 (got %q)", a.Region)
	}
	if a.RoleARN != "" && !strings.HasPrefix(a.RoleARN, "arn:") {
		e.add(p+".role_arn", "must be an ARN such as arn:aws:iam::123456789012:role/dbprobe (got %q)", a.RoleARN)
	}
}

// Read is a read statement with what it must return, as blackbox
// exporters' query checks have.
type Read struct {
	Statement   string  `yaml:"statement"`
	ExpectRows  *int    `yaml:"expect_rows"`
	ExpectValue *string `yaml:"expect_value"`
}

// Pool settings of the pooled mode, each after what application pools do.
type Pool struct {
	// MaxLifetime retires the connection once it is this old, at its next
	// use (database/sql SetConnMaxLifetime, HikariCP maxLifetime).
	MaxLifetime Duration `yaml:"max_lifetime"`
	// ValidateOnBorrow pings the connection before each probe and
	// replaces it when the ping fails (HikariCP's isValid on getConnection).
	ValidateOnBorrow bool `yaml:"validate_on_borrow"`
	// RejectReadOnly is go-sql-driver's rejectReadOnly: a connection whose
	// write is refused as read-only (1290, 1792, 1836) is dropped.
	RejectReadOnly bool `yaml:"reject_read_only"`
}

// readKeywords may start a read statement.
var readKeywords = map[string]bool{"SELECT": true, "SHOW": true, "WITH": true, "DESC": true, "DESCRIBE": true, "EXPLAIN": true, "VALUES": true, "TABLE": true}

// writeWords may not appear, outside quotes, in a read statement: they
// write, lock, or reach outside the database.
var writeWords = map[string]bool{"INSERT": true, "UPDATE": true, "DELETE": true, "REPLACE": true, "MERGE": true, "CALL": true,
	"DO": true, "SET": true, "LOAD": true, "HANDLER": true, "LOCK": true, "UNLOCK": true, "GRANT": true, "REVOKE": true,
	"CREATE": true, "DROP": true, "ALTER": true, "TRUNCATE": true, "RENAME": true, "OUTFILE": true, "DUMPFILE": true,
	"SHARE": true, "KILL": true, "SHUTDOWN": true, "FLUSH": true, "PURGE": true, "RESET": true, "INSTALL": true, "UNINSTALL": true}

func (r *Read) validate(p string, e *errs) {
	words, err := sqlWords(r.Statement)
	switch {
	case strings.TrimSpace(r.Statement) == "":
		e.add(p+".statement", "is required")
		return
	case err != nil:
		e.add(p+".statement", "%v", err)
		return
	case len(words) == 0 || !readKeywords[words[0]]:
		e.add(p+".statement", "must be a read (SELECT, SHOW, WITH ... SELECT, DESCRIBE, EXPLAIN); got one starting %q", firstWord(r.Statement))
		return
	}
	for _, w := range words {
		if writeWords[w] {
			e.add(p+".statement", "must only read, but has %s outside quotes (a statement that writes, locks or uses files is refused)", w)
			return
		}
	}
	if r.ExpectRows != nil && *r.ExpectRows < 0 {
		e.add(p+".expect_rows", "must be 0 or more (got %d)", *r.ExpectRows)
	}
	if r.ExpectRows != nil && *r.ExpectRows == 0 && r.ExpectValue != nil {
		// The value is the first row's: every probe would fail.
		e.add(p+".expect_value", "needs a row, but expect_rows is 0 (got %q)", *r.ExpectValue)
	}
}

// sqlWords returns the upper-cased bare words of a statement, skipping
// comments (but not executable ones), quoted strings and quoted
// identifiers; it refuses a second statement after a semicolon.
func sqlWords(stmt string) ([]string, error) {
	var words []string
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(stmt) && stmt[j] != c {
				if stmt[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(stmt) {
				return nil, fmt.Errorf("has an unterminated %c quote", c)
			}
			i = j + 1
		case strings.HasPrefix(stmt[i:], "/*!") || strings.HasPrefix(stmt[i:], "/*M!"):
			// MySQL and MariaDB run what an executable comment holds:
			// its words are the statement's. The version digits and the
			// closing */ are skipped as punctuation.
			i += strings.IndexByte(stmt[i:], '!') + 1
		case strings.HasPrefix(stmt[i:], "/*"):
			end := strings.Index(stmt[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("has an unterminated /* comment")
			}
			i += end + 4
		case strings.HasPrefix(stmt[i:], "-- ") || c == '#':
			end := strings.IndexByte(stmt[i:], '\n')
			if end < 0 {
				end = len(stmt) - i
			}
			i += end
		case c == ';':
			if strings.TrimSpace(stmt[i+1:]) != "" {
				return nil, fmt.Errorf("must be one statement (found text after ';')")
			}
			i = len(stmt)
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(stmt) && (stmt[j] == '_' || stmt[j] == '$' || stmt[j] >= 'a' && stmt[j] <= 'z' || stmt[j] >= 'A' && stmt[j] <= 'Z' || stmt[j] >= '0' && stmt[j] <= '9') {
				j++
			}
			words = append(words, strings.ToUpper(stmt[i:j]))
			i = j
		default:
			i++
		}
	}
	return words, nil
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return truncateText(f[0], 20)
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// AWSEvents names the RDS resources whose events (DescribeEvents) are
// polled, and a Blue/Green deployment whose status is polled too. The
// target's aws block says how to reach AWS.
type AWSEvents struct {
	Cluster             string   `yaml:"cluster"`
	Instances           []string `yaml:"instances"`
	BlueGreenDeployment string   `yaml:"bluegreen_deployment"`
	Interval            Duration `yaml:"interval"`
}

// Limits of aws_events.interval: RDS allows an account about 12 API calls a
// second, shared by everything in the region.
const (
	MinAWSEventsInterval     = 2 * time.Second
	DefaultAWSEventsInterval = 10 * time.Second
)

var (
	rdsIdentRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,62}$`)
	bgDeploymentRE = regexp.MustCompile(`^bgd-[a-z0-9]{1,60}$`)
)

func (a *AWSEvents) validate(t *Target, tp string, e *errs) {
	p := tp + ".aws_events"
	if a.Cluster == "" && len(a.Instances) == 0 && a.BlueGreenDeployment == "" {
		e.add(p, "name at least one of cluster, instances, bluegreen_deployment")
	}
	if a.Cluster != "" && !rdsIdentRE.MatchString(a.Cluster) {
		e.add(p+".cluster", "must be a DB cluster identifier (got %q)", a.Cluster)
	}
	for i, id := range a.Instances {
		if !rdsIdentRE.MatchString(id) {
			e.add(fmt.Sprintf("%s.instances[%d]", p, i), "must be a DB instance identifier (got %q)", id)
		}
	}
	if a.BlueGreenDeployment != "" && !bgDeploymentRE.MatchString(a.BlueGreenDeployment) {
		e.add(p+".bluegreen_deployment", "must be a Blue/Green deployment identifier such as bgd-abc123 (got %q)", a.BlueGreenDeployment)
	}
	if a.Interval.raw == "" {
		a.Interval.Duration = DefaultAWSEventsInterval
	} else {
		a.Interval.check(e, p+".interval", MinAWSEventsInterval, time.Hour)
	}
	if t.mysql == nil {
		return
	}
	if _, err := t.loadAWS(tp); err != nil {
		e.add(tp+".aws", "%v", err)
	}
}

// Sources lists what to poll, as awsrds names it.
func (a *AWSEvents) Sources() []awsrds.EventSource {
	var out []awsrds.EventSource
	if a.Cluster != "" {
		out = append(out, awsrds.EventSource{Type: awsrds.SourceCluster, ID: a.Cluster})
	}
	for _, id := range a.Instances {
		out = append(out, awsrds.EventSource{Type: awsrds.SourceInstance, ID: id})
	}
	if a.BlueGreenDeployment != "" {
		out = append(out, awsrds.EventSource{Type: awsrds.SourceBlueGreen, ID: a.BlueGreenDeployment})
	}
	return out
}

// Authentication methods.
const (
	AuthPassword = "password"
	AuthIAM      = "iam"
)

// Target is one MySQL endpoint to probe.
type Target struct {
	Name     string `yaml:"name"`
	Endpoint `yaml:",inline"`

	Modes    []string  `yaml:"modes"`
	Write    *Write    `yaml:"write"`
	Interval *Duration `yaml:"interval"`
	Timeout  *Duration `yaml:"timeout"`
	DNS      *DNS      `yaml:"dns"`

	// BlueGreen also polls mysql.rds_topology for the Blue/Green
	// switchover phase.
	BlueGreen bool `yaml:"bluegreen"`
	// Green is the green (replica) side of a Blue/Green deployment: read
	// on every tick for the heartbeat row to measure replication lag, and
	// checked by `dbprobe check`.
	Green *Endpoint `yaml:"green"`

	// Read is the application's own read statement, whose result decides
	// the probe's read outcome (the identity is still collected).
	Read *Read `yaml:"read"`
	// Pool makes the pooled mode's connection behave like an
	// application pool's.
	Pool *Pool `yaml:"pool"`

	// AWSEvents polls AWS's own events about the target's database, to
	// show them beside the measurement.
	AWSEvents *AWSEvents `yaml:"aws_events"`

	// Group names the groups entry whose defaults apply to this target.
	Group string `yaml:"group"`
	// Labels are free-form (team, environment, wave): copied onto every
	// event of the target and into the report.
	Labels map[string]string `yaml:"labels"`

	// resolved by validate
	interval time.Duration
	timeout  time.Duration
	dns      DNS
	labels   map[string]string
	// origin is where a target from a target file was written; nil for
	// the targets of the configuration file itself.
	origin *origin
}

// Group is a set of defaults for the targets naming it: each applies where
// the target does not set its own. Labels merge, the target's winning.
type Group struct {
	Modes    []string          `yaml:"modes"`
	Interval *Duration         `yaml:"interval"`
	Timeout  *Duration         `yaml:"timeout"`
	Write    *Write            `yaml:"write"`
	Labels   map[string]string `yaml:"labels"`
}

// TLS configures TLS for a target, given by host/port or by DSN.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Write enables the write probe.
type Write struct {
	Table string `yaml:"table"`
}

// Sinks configures where events go besides the log.
type Sinks struct {
	Journal       Journal        `yaml:"journal"`
	Elasticsearch *Elasticsearch `yaml:"elasticsearch"`
}

// Journal is the local event journal.
type Journal struct {
	Dir          string           `yaml:"dir"`
	SegmentSize  ByteSize         `yaml:"segment_size"`
	SyncInterval Duration         `yaml:"sync_interval"`
	Retention    JournalRetention `yaml:"retention"`
}

// JournalRetention decides when journal segments are deleted. A segment is
// deleted once it has not been written to for DeleteAfter and, when the
// Elasticsearch sink is on, every event in it is in Elasticsearch.
// MaxBytes caps the journal's size on disk: when exceeded, the oldest
// segments go whatever their age, shipped ones first; deleting unshipped
// events is logged as an error, because they are lost to Elasticsearch.
// The zero value keeps everything.
type JournalRetention struct {
	DeleteAfter Duration `yaml:"delete_after"`
	MaxBytes    ByteSize `yaml:"max_bytes"`
}

// Log configures dbprobe's own log on stderr.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // logfmt or json
}

// Duration is a time.Duration written as Go writes it ("1s", "100ms"). It
// keeps what the user wrote so validation can quote it.
type Duration struct {
	time.Duration
	raw string
	err error
}

// UnmarshalYAML defers parse errors to validation, which knows the path.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	d.raw = n.Value
	d.Duration, d.err = time.ParseDuration(n.Value)
	return nil
}

// MarshalYAML writes the duration back as text.
func (d Duration) MarshalYAML() (any, error) { return d.Duration.String(), nil }

func (d Duration) check(e *errs, path string, lo, hi time.Duration) {
	switch {
	case d.err != nil:
		e.add(path, "not a duration (got %q; write e.g. 1s, 100ms)", d.raw)
	case d.Duration < lo:
		e.add(path, "must be at least %v (got %v)", lo, d.Duration)
	case hi > 0 && d.Duration > hi:
		e.add(path, "must be at most %v (got %v)", hi, d.Duration)
	}
}

// ByteSize is a size such as "64MiB", "1GB" or a plain number of bytes.
type ByteSize struct {
	Bytes int64
	raw   string
	err   error
}

var sizeRE = regexp.MustCompile(`^\s*(\d+)\s*([KMGT]i?B|B)?\s*$`)

// UnmarshalYAML defers parse errors to validation.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	b.raw = n.Value
	m := sizeRE.FindStringSubmatch(n.Value)
	if m == nil {
		b.err = fmt.Errorf("bad size")
		return nil
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		b.err = err
		return nil
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	b.Bytes = v * mult
	return nil
}

func (b ByteSize) check(e *errs, path string, lo int64) {
	switch {
	case b.err != nil:
		e.add(path, "not a size (got %q; write e.g. 64MiB)", b.raw)
	case b.Bytes < lo:
		e.add(path, "must be at least %d bytes (got %q)", lo, b.raw)
	}
}

// Default returns the configuration every file is decoded over.
func Default() *Config {
	return &Config{
		Interval: Duration{Duration: time.Second},
		Timeout:  Duration{Duration: 2 * time.Second},
		Sinks: Sinks{Journal: Journal{
			Dir:          "./dbprobe-data",
			SegmentSize:  ByteSize{Bytes: 64 << 20},
			SyncInterval: Duration{Duration: time.Second},
		}},
		HTTP: DefaultHTTP(),
		Log:  Log{Level: "info", Format: "logfmt"},
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}(\.[A-Za-z_][A-Za-z0-9_$]{0,63})?$`)

func (c *Config) validate() error {
	var e errs
	c.Interval.check(&e, "interval", MinInterval, time.Hour)
	c.Timeout.check(&e, "timeout", time.Millisecond, MaxTimeout)
	checkOverlap(&e, "", c.Interval.Duration, c.Timeout.Duration, true)
	if c.RunID != "" && !nameRE.MatchString(c.RunID) {
		e.add("run_id", "must be 1-63 letters, digits, '.', '_' or '-' (got %q)", c.RunID)
	}
	if c.Observer.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "dbprobe"
		}
		c.Observer.Name = h
	}
	if !nameRE.MatchString(c.Observer.Name) {
		e.add("observer.name", "must be 1-63 letters, digits, '.', '_' or '-' (got %q)", c.Observer.Name)
	}
	for k := range c.Observer.Labels {
		if !labelKeyRE.MatchString(k) {
			e.add("observer.labels."+k, "label names must match %s", labelKeyRE)
		}
	}
	c.DNS.check(&e, "dns")
	if len(c.Targets) == 0 {
		e.add("targets", "at least one target is required (in targets or target_files)")
	}
	groupOK := c.validateGroups(&e)
	c.validateMetricLabels(&e)
	names := map[string]string{}
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d]", i)
		te := &e
		var sub errs
		if t.origin != nil {
			// Errors in a target file are placed by file and line: the
			// index in the merged list means nothing to its author.
			p = fmt.Sprintf("targets[%d]", t.origin.index)
			te = &sub
		}
		where := p
		if t.origin != nil {
			where = t.origin.locate(p)
		}
		if w, dup := names[t.Name]; dup && t.Name != "" {
			te.add(p+".name", "%q is already the name of %s", t.Name, w)
		} else {
			names[t.Name] = where
		}
		t.applyGroup(c, p, groupOK, te)
		t.validate(c, p, te)
		for _, f := range sub.list {
			f.Path = t.origin.locate(f.Path)
			e.list = append(e.list, f)
		}
	}
	j := &c.Sinks.Journal
	if j.Dir == "" {
		e.add("sinks.journal.dir", "is required")
	}
	j.SegmentSize.check(&e, "sinks.journal.segment_size", 1<<20)
	j.SyncInterval.check(&e, "sinks.journal.sync_interval", 10*time.Millisecond, time.Minute)
	if r := &j.Retention; r.DeleteAfter.raw != "" {
		r.DeleteAfter.check(&e, "sinks.journal.retention.delete_after", 0, 0)
	}
	if r := &j.Retention; r.MaxBytes.raw != "" {
		r.MaxBytes.check(&e, "sinks.journal.retention.max_bytes", 0)
		if r.MaxBytes.err == nil && j.SegmentSize.err == nil && r.MaxBytes.Bytes > 0 && r.MaxBytes.Bytes < 2*j.SegmentSize.Bytes {
			e.add("sinks.journal.retention.max_bytes", "must be at least two segments (2 x %d bytes) or 0 (got %q)", j.SegmentSize.Bytes, r.MaxBytes.raw)
		}
	}
	if c.Sinks.Elasticsearch != nil {
		c.Sinks.Elasticsearch.validate(&e, "sinks.elasticsearch")
	}
	c.HTTP.validate(&e, "http")
	c.Notify.validate(&e, "notify")
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		e.add("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	switch c.Log.Format {
	case "logfmt", "json":
	default:
		e.add("log.format", "must be logfmt or json (got %q)", c.Log.Format)
	}
	return e.err("")
}

var labelKeyRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (d *DNS) check(e *errs, path string) {
	if d.Server == "" {
		return
	}
	host, port, err := net.SplitHostPort(d.Server)
	if err != nil {
		e.add(path+".server", "must be host:port (got %q)", d.Server)
		return
	}
	if _, err := netip.ParseAddr(host); err != nil {
		e.add(path+".server", "host must be an IP address, so asking it needs no DNS itself (got %q)", d.Server)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		e.add(path+".server", "port must be 1-65535 (got %q)", d.Server)
	}
}

func (t *Target) validate(c *Config, p string, e *errs) {
	if t.Name == "" {
		e.add(p+".name", "is required")
	} else if !nameRE.MatchString(t.Name) {
		e.add(p+".name", "must be 1-63 letters, digits, '.', '_' or '-' (got %q)", t.Name)
	}
	t.interval, t.timeout = c.Interval.Duration, c.Timeout.Duration
	if t.Interval != nil {
		t.Interval.check(e, p+".interval", MinInterval, time.Hour)
		t.interval = t.Interval.Duration
	}
	if t.Timeout != nil {
		t.Timeout.check(e, p+".timeout", time.Millisecond, MaxTimeout)
		t.timeout = t.Timeout.Duration
	}
	// Top-level values are checked once, at the top.
	if t.Interval != nil || t.Timeout != nil {
		checkOverlap(e, p+".", t.interval, t.timeout, t.Timeout != nil)
	}
	t.dns = c.DNS
	if t.DNS != nil {
		t.DNS.check(e, p+".dns")
		t.dns = *t.DNS
	}
	if len(t.Modes) == 0 {
		t.Modes = []string{"fresh"}
	}
	checkModes(t.Modes, p, e)
	if t.Write != nil && !identRE.MatchString(t.Write.Table) {
		e.add(p+".write.table", "must be a table name, optionally schema.table (got %q)", t.Write.Table)
	}
	checkLabels(t.Labels, p+".labels", e)
	t.mysql = t.Endpoint.build(p, e)
	if t.AWS != nil && t.Auth != AuthIAM && t.AWSEvents == nil {
		e.add(p+".aws", "is used only by auth: iam and aws_events, and this target sets neither")
	}
	t.AWS.validate(p+".aws", e)
	t.Endpoint.auth(p, e)
	if t.AWSEvents != nil {
		t.AWSEvents.validate(t, p, e)
	}
	if t.Read != nil {
		t.Read.validate(p+".read", e)
	}
	if t.Pool != nil {
		if !slices.Contains(t.Modes, "pooled") {
			e.add(p+".pool", "only applies to the pooled mode (add pooled to %s.modes)", p)
		}
		if t.Pool.MaxLifetime.raw != "" {
			t.Pool.MaxLifetime.check(e, p+".pool.max_lifetime", time.Second, 0)
		}
	}
	if t.Green != nil {
		t.Green.mysql = t.Green.build(p+".green", e)
		if t.Green.AWS != nil && t.Green.Auth != AuthIAM {
			e.add(p+".green.aws", "is used only by auth: iam, which this endpoint does not set")
		}
		t.Green.AWS.validate(p+".green.aws", e)
		t.Green.auth(p+".green", e)
		if t.Write == nil {
			e.add(p+".green", "measuring replication lag needs the write probe (set %s.write.table)", p)
		}
	}
}

func checkModes(modes []string, p string, e *errs) {
	seen := map[string]bool{}
	for i, m := range modes {
		if m != "fresh" && m != "pooled" {
			e.add(fmt.Sprintf("%s.modes[%d]", p, i), "must be fresh or pooled (got %q)", m)
		}
		if seen[m] {
			e.add(fmt.Sprintf("%s.modes[%d]", p, i), "%q is listed twice", m)
		}
		seen[m] = true
	}
}

// build turns the DSN or the discrete fields into a driver config.
// Messages never quote the DSN or the password.
func (t *Endpoint) build(p string, e *errs) *mysql.Config {
	discrete := t.Host != "" || t.Port != 0 || t.User != "" || t.Password != "" || t.PasswordFile != "" || t.Database != ""
	switch {
	case t.DSN != "" && discrete:
		e.add(p+".dsn", "give either dsn or host/port/user/password/database, not both")
		return nil
	case t.DSN != "":
		mc, err := mysql.ParseDSN(t.DSN)
		if err != nil {
			// The driver quotes parts of the DSN, the password among them
			// when it is misplaced.
			msg := redact.New(dsnPassword(t.DSN)).String(err.Error())
			e.add(p+".dsn", "not a valid DSN: %s (format: user:password@tcp(host:port)/dbname?param=value)", msg)
			return nil
		}
		if mc.Net != "tcp" {
			e.add(p+".dsn", "only tcp(host:port) addresses can be probed (got %q)", mc.Net)
			return nil
		}
		host, _, err := net.SplitHostPort(mc.Addr)
		if err != nil {
			e.add(p+".dsn", "address must be host:port (got %q)", mc.Addr)
			return nil
		}
		if t.TLS != nil {
			if mc.TLSConfig != "" {
				e.add(p+".tls", "the DSN sets tls=%s too; give TLS in one place", mc.TLSConfig)
			}
			t.applyTLS(mc, host, p, e)
		}
		refuseDangerousParams(mc, p+".dsn", e)
		return mc
	}
	if t.Host == "" {
		e.add(p, "either dsn or host is required")
		return nil
	}
	if t.Port == 0 {
		t.Port = 3306
	}
	if t.Port < 1 || t.Port > 65535 {
		e.add(p+".port", "must be 1-65535 (got %d)", t.Port)
	}
	if t.User == "" {
		e.add(p+".user", "is required")
	}
	mc := mysql.NewConfig()
	mc.Net = "tcp"
	mc.Addr = net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	mc.User = t.User
	mc.DBName = t.Database
	mc.Passwd = t.Password
	if t.Password != "" && t.PasswordFile != "" {
		e.add(p+".password_file", "give either password or password_file, not both")
	}
	if t.PasswordFile != "" {
		b, err := os.ReadFile(t.PasswordFile)
		if err != nil {
			e.add(p+".password_file", "cannot read %q: %v", t.PasswordFile, unwrapPathErr(err))
		}
		mc.Passwd = strings.TrimRight(string(b), "\r\n")
	}
	if t.TLS != nil {
		t.applyTLS(mc, t.Host, p, e)
	}
	return mc
}

// applyTLS sets the driver config's TLS from the endpoint's tls block, for
// a server named host, whether the address came from the DSN or from
// host/port.
func (t *Endpoint) applyTLS(mc *mysql.Config, host, p string, e *errs) {
	tc, err := t.TLS.build(host)
	if err != nil {
		e.add(p+".tls", "%v", err)
	}
	mc.TLS = tc
}

// auth sets up IAM authentication on the built driver config. IAM tokens
// travel as clear-text passwords, so IAM without TLS (or with TLS that may
// fall back to plain text) is refused.
func (t *Endpoint) auth(p string, e *errs) {
	switch t.Auth {
	case "", AuthPassword:
		return
	case AuthIAM:
	default:
		e.add(p+".auth", "must be password or iam (got %q)", t.Auth)
		return
	}
	mc := t.mysql
	if mc == nil {
		return
	}
	if mc.Passwd != "" {
		e.add(p+".auth", "iam makes the password from AWS credentials; remove the password from %s", passwordField(t))
	}
	if mc.User == "" {
		e.add(p+".user", "auth: iam needs the database user the token is for")
	}
	switch {
	case mc.TLS == nil:
		e.add(p+".auth", "iam sends its token in clear text, so it needs TLS: add %s.tls (e.g. {ca_file: /etc/ssl/rds-global-bundle.pem}) or tls=true to the DSN", p)
		return
	case mc.AllowFallbackToPlaintext:
		e.add(p+".auth", "iam needs TLS that never falls back to plain text (got tls=preferred in the DSN); use tls=true or %s.tls", p)
		return
	case mc.TLS.InsecureSkipVerify:
		e.add(p+".auth", "iam needs TLS that verifies the server, or the token goes to whoever answers (got insecure_skip_verify or tls=skip-verify)")
		return
	}
	cfg, err := t.loadAWS(p)
	if err != nil {
		e.add(p+".aws", "%v", err)
		return
	}
	t.iam = awsrds.NewTokenSource(mc.Addr, cfg.Region, mc.User, cfg.Credentials, nil)
	if err := awsrds.Attach(mc, t.iam); err != nil {
		e.add(p+".auth", "%v", err)
	}
}

// loadAWS loads the AWS configuration of the endpoint, whose driver config
// is built, once: the region is the configured one, else the SDK's
// (AWS_REGION, profile), else the one in the RDS endpoint name.
func (t *Endpoint) loadAWS(p string) (*aws.Config, error) {
	if t.aws != nil {
		return t.aws, nil
	}
	var s AWS
	if t.AWS != nil {
		s = *t.AWS
	}
	cfg, err := awsrds.LoadConfig(context.Background(), awsrds.Settings{Region: s.Region, RoleARN: s.RoleARN})
	if err != nil {
		return nil, fmt.Errorf("cannot load the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		host, _, _ := net.SplitHostPort(t.mysql.Addr)
		cfg.Region = awsrds.RegionFromHost(host)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set %s.aws.region (or AWS_REGION)", p)
	}
	t.aws = &cfg
	return t.aws, nil
}

func passwordField(t *Endpoint) string {
	switch {
	case t.DSN != "":
		return "the DSN"
	case t.PasswordFile != "":
		return "password_file"
	}
	return "password"
}

// IAM returns the endpoint's IAM token source, nil unless auth is iam.
func (t *Endpoint) IAM() *awsrds.TokenSource { return t.iam }

// AWSConfig returns the AWS configuration loaded for IAM or AWS events,
// nil when neither is on.
func (t *Endpoint) AWSConfig() *aws.Config { return t.aws }

// dsnPassword finds the password in a DSN the driver could not parse, the
// way the driver splits it: user:password before the last "@" that comes
// before the last "/".
func dsnPassword(dsn string) string {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndexByte(dsn[:slash], '@')
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(dsn[:at], ":")
	return pw
}

// refuseDangerousParams refuses the DSN parameters that give the server
// more than a probe needs; docs/configuration.md says why for each. A probe
// runs fixed statements against a server that may be anyone (DNS moves
// during a switchover, a proxy sits in between), so nothing the server
// asks for may reach beyond them.
func refuseDangerousParams(mc *mysql.Config, path string, e *errs) {
	if mc.AllowAllFiles {
		e.add(path, "parameter allowAllFiles=true is refused: it lets the server read any file dbprobe can read (LOAD DATA LOCAL INFILE), password files included")
	}
	if mc.AllowOldPasswords {
		e.add(path, "parameter allowOldPasswords=true is refused: the pre-4.1 password hash is broken and lets a server or eavesdropper recover the password")
	}
	if mc.AllowCleartextPasswords && (mc.TLS == nil || mc.TLS.InsecureSkipVerify || mc.AllowFallbackToPlaintext) {
		e.add(path, "parameter allowCleartextPasswords=true is refused without tls=true: the password would cross the network readable (got tls=%q)", mc.TLSConfig)
	}
	if mc.MultiStatements {
		e.add(path, "parameter multiStatements=true is refused: dbprobe never needs it, and it would let one configured statement chain others")
	}
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (t *TLS) build(host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // user's explicit choice
	if t.ServerName != "" {
		tc.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: cannot read %q: %w", t.CAFile, unwrapPathErr(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: no PEM certificate in %q", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, fmt.Errorf("cert_file and key_file go together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// MySQL returns a copy of the endpoint's driver configuration. Callers own
// the copy and may set dial functions and timeouts on it.
func (t *Endpoint) MySQL() *mysql.Config { return t.mysql.Clone() }

// HostPort returns the host and port the endpoint's address names.
func (t *Endpoint) HostPort() (host string, port int) {
	h, ps, _ := net.SplitHostPort(t.mysql.Addr)
	port, _ = strconv.Atoi(ps)
	return h, port
}

// EffectiveInterval is the target's probe period after defaults.
func (t *Target) EffectiveInterval() time.Duration { return t.interval }

// EffectiveTimeout is the target's per-probe deadline after defaults.
func (t *Target) EffectiveTimeout() time.Duration { return t.timeout }

// EffectiveDNS is the target's resolver setting after defaults.
func (t *Target) EffectiveDNS() DNS { return t.dns }

// Secrets returns the strings that must never appear in any output: the
// passwords of every target and the webhook URLs and header values.
func (c *Config) Secrets() []string {
	var out []string
	for i := range c.Targets {
		t := &c.Targets[i]
		for _, m := range []*mysql.Config{t.mysql, greenMySQL(t.Green)} {
			if m != nil && m.Passwd != "" {
				out = append(out, m.Passwd)
			}
		}
	}
	out = append(out, c.Notify.secrets()...)
	if c.Sinks.Elasticsearch != nil {
		out = append(out, c.Sinks.Elasticsearch.secrets()...)
	}
	return out
}

func greenMySQL(g *Endpoint) *mysql.Config {
	if g == nil {
		return nil
	}
	return g.mysql
}
