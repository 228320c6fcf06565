// Package promtest runs the real Prometheus programs in tests: promtool to
// check metrics, rules and configuration, and a prometheus server on
// loopback for end-to-end tests. Both come from the Debian "prometheus"
// package; a test that needs them fails (never skips) when they are missing,
// telling how to install them.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/loopback"
)

const installHint = "run `make test`, which installs it, or install the Debian/Ubuntu package yourself: sudo apt-get install prometheus (provides /usr/bin/prometheus and /usr/bin/promtool); see docs/testing.md"

// find looks for name on PATH, then in /usr/bin (not always on a CI PATH
// for non-login shells).
func find(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("%s not found: %s", name, installHint)
	return ""
}

// Promtool returns the path of promtool, failing t when it is missing.
func Promtool(t testing.TB) string {
	t.Helper()
	return find(t, "promtool")
}

// RunPromtool runs promtool with args (and stdin when not nil) in dir and
// returns its combined output; a non-zero exit is an error carrying it.
func RunPromtool(t testing.TB, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Promtool(t), args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("promtool %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Options configure a Prometheus server.
type Options struct {
	// Targets are host:port addresses scraped by one job named "dbprobe".
	Targets []string
	// ScrapeInterval is also the rule evaluation interval; default 1s.
	ScrapeInterval time.Duration
	// RuleFiles are loaded as rule_files (absolute paths).
	RuleFiles []string
	// BasicAuth, when set, is the user and password of the scrape.
	BasicAuth [2]string
	// NativeHistograms turns on the native-histograms feature flag: the
	// server then scrapes protobuf and stores native histograms. That is
	// how Prometheus 2.40 to 3.8 (Debian's 2.42 here) take them; later
	// versions want scrape_native_histograms in the configuration.
	NativeHistograms bool
}

// Server is a running prometheus.
type Server struct {
	URL string
	cmd *exec.Cmd
	log string
}

// Start runs prometheus in a temporary directory on a free loopback port
// and waits until it is ready. It is stopped (SIGTERM, then SIGKILL) when
// the test ends; its log is printed if the test failed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := find(t, "prometheus")
	dir := t.TempDir()
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	cfg := configYAML(o)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := loopback.FreeAddr(t)
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=info",
	}
	if o.NativeHistograms {
		args = append(args, "--enable-feature=native-histograms")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a stop reaches nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	s := &Server{URL: "http://" + addr, cmd: cmd, log: logPath}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready:\n%s", s.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30s:\n%s", s.Log())
		}
	}
}

func configYAML(o Options) string {
	var b strings.Builder
	iv := o.ScrapeInterval.String()
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", iv, iv, iv)
	if len(o.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range o.RuleFiles {
			fmt.Fprintf(&b, "  - %s\n", strconv.Quote(f))
		}
	}
	b.WriteString("scrape_configs:\n  - job_name: dbprobe\n")
	if o.BasicAuth[0] != "" {
		fmt.Fprintf(&b, "    basic_auth:\n      username: %s\n      password: %s\n", strconv.Quote(o.BasicAuth[0]), strconv.Quote(o.BasicAuth[1]))
	}
	b.WriteString("    static_configs:\n      - targets:\n")
	for _, t := range o.Targets {
		fmt.Fprintf(&b, "          - %s\n", strconv.Quote(t))
	}
	return b.String()
}

// Log returns what prometheus logged so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Sample is one element of an instant query's vector result.
type Sample struct {
	Labels map[string]string
	Value  string
}

// api calls a Prometheus query endpoint and returns the result's type and
// raw value.
func (s *Server) api(ctx context.Context, path string, params url.Values) (string, json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path+"?"+params.Encode(), nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", nil, fmt.Errorf("query %q: HTTP %d: %w", params.Get("query"), resp.StatusCode, err)
	}
	if r.Status != "success" {
		return "", nil, fmt.Errorf("query %q: %s", params.Get("query"), r.Error)
	}
	return r.Data.ResultType, r.Data.Result, nil
}

// Series is one element of a range query's matrix result.
type Series struct {
	Labels map[string]string
	Values []string // sample values, oldest first
}

// QueryRange runs a range query and returns its matrix result.
func (s *Server) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]Series, error) {
	typ, raw, err := s.api(ctx, "/api/v1/query_range", url.Values{
		"query": {q},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
	if err != nil {
		return nil, err
	}
	if typ != "matrix" {
		return nil, fmt.Errorf("query %q: result type %q, want matrix", q, typ)
	}
	var m []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	out := make([]Series, len(m))
	for i, x := range m {
		out[i].Labels = x.Metric
		for _, v := range x.Values {
			val, _ := v[1].(string)
			out[i].Values = append(out[i].Values, val)
		}
	}
	return out, nil
}

// Query runs an instant query and returns its vector result. A scalar
// result comes back as one sample without labels.
func (s *Server) Query(ctx context.Context, q string) ([]Sample, error) {
	typ, raw, err := s.api(ctx, "/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return nil, err
	}
	switch typ {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("query %q: %w", q, err)
		}
		out := make([]Sample, len(v))
		for i, x := range v {
			val, _ := x.Value[1].(string)
			out[i] = Sample{Labels: x.Metric, Value: val}
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("query %q: %w", q, err)
		}
		val, _ := v[1].(string)
		return []Sample{{Value: val}}, nil
	}
	return nil, fmt.Errorf("query %q: unexpected result type %q", q, typ)
}

// ErrTimeout is returned by Await when the condition did not hold in time.
var ErrTimeout = errors.New("condition not met before the deadline")

// Await polls q every 250ms until cond accepts its result or ctx ends.
func (s *Server) Await(ctx context.Context, q string, cond func([]Sample) bool) ([]Sample, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last []Sample
	var lastErr error
	for {
		last, lastErr = s.Query(ctx, q)
		if lastErr == nil && cond(last) {
			return last, nil
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("%w: %w", ErrTimeout, lastErr)
			}
			return last, ErrTimeout
		case <-tick.C:
		}
	}
}
