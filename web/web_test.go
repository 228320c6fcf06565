package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/dashboards/grafana"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/promtest"
	"github.com/dbprobe/dbprobe/live"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/metrics"
)

// testPassword's bcrypt hash (cost 4) is in the web config files below.
const (
	testUser     = "prometheus"
	testPassword = "dbprobe-test-password"
	testHash     = "$2a$04$ectoAe6i4.OPsor2.ptQX.lwYHDCJOnZZOLVH631X.5b/51uqy4/O"
)

// start serves o on a free loopback port until the test ends and returns
// the base URL.
func start(t *testing.T, o Options) string {
	t.Helper()
	o.Listen = "127.0.0.1:0"
	s, err := Listen(o)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	serveUntilEnd(t, s)
	return "http://" + s.Addr()
}

// serveUntilEnd serves s until the test ends.
func serveUntilEnd(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after its context ended, want nil", err)
		}
	})
}

func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// post sends an empty POST with header and returns the status and body.
func post(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	code, _, body := do(t, http.DefaultClient, req)
	return code, body
}

// do sends req and returns the status, the content type and the body.
func do(t *testing.T, c *http.Client, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: "9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	k := event.StreamKey{Observer: "obs", Target: "db<1>", Mode: "fresh"}
	m.AddStream(k, time.Second)
	board := live.New(live.Options{})
	board.AddStream(k)
	var reportCalls atomic.Int32
	// Pages are rendered at most once per RenderEvery: every request
	// below comes an interval after the one before.
	clock := &fakeClock{t: time.Now()}
	base := start(t, Options{
		Now:      clock.Now,
		Gatherer: m.Gatherer(reg),
		Ready:    m.Ready,
		Board:    board.Snapshot,
		Version:  "9.9.9",
		ReportHTML: func(_ context.Context, w io.Writer) error {
			_, err := io.WriteString(w, "<h1>report</h1>")
			return err
		},
		Report: func(_ context.Context, w io.Writer) error {
			if reportCalls.Add(1) > 1 {
				return errors.New("renderer broke")
			}
			_, err := io.WriteString(w, `{"schema":1}`)
			return err
		},
	})
	c := http.DefaultClient

	tests := []struct {
		name, path string
		wantCode   int
		wantType   string
		wantBody   string
	}{
		{"metrics", "/metrics", 200, "text/plain", `dbprobe_build_info{goversion=`},
		{"healthy", "/-/healthy", 200, "text/plain", "Healthy"},
		{"not ready before the first probe", "/-/ready", 503, "text/plain", "Not ready"},
		{"status page escapes names", "/", 200, "text/html", "db&lt;1&gt;"},
		{"status page before probing", "/", 200, "text/html", "waiting for the first probe"},
		{"status page updates itself", "/", 200, "text/html", `fetch("live"`},
		{"live part alone", "/live", 200, "text/html", `<section class="live" id="live"`},
		{"status page links the HTML report", "/", 200, "text/html", `href="report"`},
		{"HTML report", "/report", 200, "text/html", "<h1>report</h1>"},
		{"report", "/api/v1/report", 200, "application/json", `{"schema":1}`},
		{"report renderer fails", "/api/v1/report", 500, "text/plain", "Rendering failed"},
		{"unknown path", "/nope", 404, "text/plain", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Add(DefaultRenderEvery)
			code, ctype, body := get(t, c, base+tc.path)
			if code != tc.wantCode || !strings.HasPrefix(ctype, tc.wantType) || !strings.Contains(body, tc.wantBody) {
				t.Errorf("GET %s = %d %q %q, want %d %q containing %q", tc.path, code, ctype, body, tc.wantCode, tc.wantType, tc.wantBody)
			}
		})
	}

	resp, err := http.Post(base+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", resp.StatusCode)
	}

	first := &event.Event{Timestamp: time.Now(), Event: event.Meta{Action: event.ActionProbe},
		Observer: event.Observer{Name: k.Observer},
		DBProbe:  event.DBProbe{Target: k.Target, Mode: k.Mode, Read: &event.Outcome{OK: true}}}
	m.Observe(first)
	board.Observe(first)
	if code, _, body := get(t, c, base+"/-/ready"); code != 200 {
		t.Errorf("GET /-/ready after the first probe = %d %q, want 200", code, body)
	}
	clock.Add(DefaultRenderEvery)
	if _, _, body := get(t, c, base+"/live"); !strings.Contains(body, `<span class="state">up</span>`) || !strings.Contains(body, "reads up") {
		t.Errorf("live part after a good probe lacks the up state:\n%s", body)
	}
}

func TestNoReport(t *testing.T) {
	base := start(t, Options{Gatherer: prometheus.NewRegistry()})
	for _, p := range []string{"/api/v1/report", "/report"} {
		if code, _, _ := get(t, http.DefaultClient, base+p); code != 404 {
			t.Errorf("GET %s without a report = %d, want 404", p, code)
		}
	}
	if _, _, body := get(t, http.DefaultClient, base+"/"); strings.Contains(body, `href="report"`) {
		t.Errorf("status page links a report that is not there")
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/-/ready"); code != 200 {
		t.Errorf("GET /-/ready without a readiness func = %d, want 200", code)
	}
}

func TestCustomStatusPage(t *testing.T) {
	base := start(t, Options{Gatherer: prometheus.NewRegistry(),
		Status: func(_ context.Context, w io.Writer) error {
			_, err := io.WriteString(w, "<p>the HTML report</p>")
			return err
		}})
	if _, _, body := get(t, http.DefaultClient, base+"/"); body != "<p>the HTML report</p>" {
		t.Errorf("GET / = %q, want the Status renderer's page", body)
	}
}

func TestTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certPEM := writeCert(t, dir)
	cfg := filepath.Join(dir, "web.yml")
	writeFile(t, cfg, fmt.Sprintf("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  %s: %s\n", testUser, testHash))
	var reloads atomic.Int32
	base := start(t, Options{Gatherer: prometheus.NewRegistry(), WebConfigFile: cfg, EnableLifecycle: true,
		Reload: func(context.Context) error { reloads.Add(1); return nil }})
	base = strings.Replace(base, "http://", "https://", 1)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	tests := []struct {
		name     string
		user     string
		password string
		want     int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", testUser, "nope", http.StatusUnauthorized},
		{"right password", testUser, testPassword, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A reload changes what dbprobe does: it is behind the same
			// authentication as every page.
			for _, r := range []struct{ method, path string }{{http.MethodGet, "/-/healthy"}, {http.MethodPost, "/-/reload"}} {
				req, err := http.NewRequest(r.method, base+r.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.user != "" {
					req.SetBasicAuth(tc.user, tc.password)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s over TLS: %v", r.method, err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("%s %s with %s = %d, want %d", r.method, r.path, tc.name, resp.StatusCode, tc.want)
				}
			}
		})
	}
	if n := reloads.Load(); n != 1 {
		t.Errorf("%d reloads, want 1 (the authenticated one)", n)
	}
	// Plain HTTP to the TLS port gets no page.
	if resp, err := http.Get(strings.Replace(base, "https://", "http://", 1) + "/-/healthy"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS port = 200, want a refusal")
		}
	}
}

func TestListenErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.pem\n")
	unknown := filepath.Join(dir, "unknown.yml")
	writeFile(t, unknown, "basic_auth_user: {}\n")
	// An empty file would serve plain HTTP without authentication while
	// the user believes it protected.
	empty := filepath.Join(dir, "empty.yml")
	writeFile(t, empty, "")
	comments := filepath.Join(dir, "comments.yml")
	writeFile(t, comments, "# tls_server_config:\n#   cert_file: cert.pem\n\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name      string
		o         Options
		webConfig bool // error must wrap ErrWebConfig
	}{
		{"missing certificate", Options{Listen: "127.0.0.1:0", WebConfigFile: bad}, true},
		{"unknown key", Options{Listen: "127.0.0.1:0", WebConfigFile: unknown}, true},
		{"missing file", Options{Listen: "127.0.0.1:0", WebConfigFile: filepath.Join(dir, "none.yml")}, true},
		{"empty file", Options{Listen: "127.0.0.1:0", WebConfigFile: empty}, true},
		{"comments only", Options{Listen: "127.0.0.1:0", WebConfigFile: comments}, true},
		{"address in use", Options{Listen: busy.Addr().String()}, false},
		{"no address", Options{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Gatherer = prometheus.NewRegistry()
			s, err := Listen(tc.o)
			if err == nil {
				s.Close()
				t.Fatalf("Listen succeeded, want an error")
			}
			if got := errors.Is(err, ErrWebConfig); got != tc.webConfig {
				t.Errorf("errors.Is(%v, ErrWebConfig) = %v, want %v", err, got, tc.webConfig)
			}
		})
	}
}

// TestGracefulShutdown: a request in flight when the context ends is
// answered, and Serve returns only after it.
func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, err := Listen(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(),
		Status: func(_ context.Context, w io.Writer) error {
			close(entered)
			<-release
			_, err := io.WriteString(w, "late page")
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if body := <-got; body != "late page" {
		t.Errorf("in-flight request got %q, want %q", body, "late page")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Errorf("port still accepts connections after Serve returned")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCert writes a self-signed certificate for localhost and 127.0.0.1
// as cert.pem and key.pem in dir and returns the certificate PEM.
func writeCert(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	writeFile(t, filepath.Join(dir, "cert.pem"), string(certPEM))
	writeFile(t, filepath.Join(dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certPEM
}

func TestCloseReleasesAddress(t *testing.T) {
	s, err := Listen(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address %s still taken after Close: %v", addr, err)
	}
	l.Close()
}

// TestLiveStatusPage checks the page at / when a live report is wired: the
// live state table sits above the HTML report's own rendering.
func TestLiveStatusPage(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := &report.Report{Schema: report.Schema, RunID: "live-run", From: &now, To: &now}
	base := start(t, Options{Gatherer: prometheus.NewRegistry(),
		Board: func() []live.Target {
			return []live.Target{{Name: "db", Streams: []live.Stream{{Key: event.StreamKey{Observer: "obs", Target: "db", Mode: "fresh"}}}}}
		},
		Live: func(_ context.Context, w io.Writer, l report.Live) error {
			return report.LiveHTML(w, rep, l)
		}})
	_, _, body := get(t, http.DefaultClient, base+"/")
	banner, title := strings.Index(body, `<h2 class="banner-target">db</h2>`), strings.Index(body, "<header>")
	if banner < 0 || title < 0 || banner > title {
		t.Errorf("GET / = %q; want the banner, then the report", body)
	}
	if !strings.Contains(body, `<noscript><meta http-equiv="refresh"`) || !strings.Contains(body, `fetch("live"`) {
		t.Error("the live page does not keep itself current, with and without scripts")
	}
	var offline strings.Builder
	if err := report.HTML(&offline, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(offline.String(), "<script") {
		t.Error("the offline HTML report carries a script")
	}
}

// TestNativeHistogramsReachPrometheus: a Prometheus with native histograms
// on negotiates protobuf and stores the latency histograms as native
// histograms, with the counts dbprobe observed, and the dashboard's latency
// panels find them. (The end-to-end test in deploy/prometheus scrapes text,
// with classic buckets.)
func TestNativeHistogramsReachPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: "9.9.9", Observer: "obs"})
	if err != nil {
		t.Fatal(err)
	}
	k := event.StreamKey{Observer: "obs", Target: "db", Mode: event.ModeFresh}
	m.AddStream(k, time.Second)
	lag := 0.2
	probe := func(total float64) {
		m.Observe(&event.Event{Timestamp: time.Now(), Event: event.Meta{Kind: event.KindEvent, Action: event.ActionProbe},
			DBProbe: event.DBProbe{Target: k.Target, Mode: k.Mode, Read: &event.Outcome{OK: true}, LagMS: &lag,
				Latency: &event.Latency{Total: total}}})
	}
	for i := range 5 {
		probe(1 + float64(i))
	}
	base := start(t, Options{Gatherer: m.Gatherer(reg), NativeGatherer: m.NativeGatherer(reg)})
	prom := promtest.Start(t, promtest.Options{Targets: []string{strings.TrimPrefix(base, "http://")}, NativeHistograms: true})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	q := `histogram_count(dbprobe_probe_duration_seconds{target="db", mode="fresh", phase="total"})`
	got, err := prom.Await(ctx, q, func(s []promtest.Sample) bool { return len(s) == 1 })
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if got[0].Value != "5" {
		t.Errorf("%s = %s, want 5", q, got[0].Value)
	}

	// The panels take quantiles of rates: keep probing while Prometheus
	// scrapes a few times.
	probing, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-probing.Done():
				return
			case <-tick.C:
				probe(3)
			}
		}
	}()
	defer func() { stop(); <-done }()
	qs, err := grafana.Queries(grafana.Dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	for _, dq := range qs {
		if !strings.Contains(dq.Expr, "dbprobe_probe_duration_seconds") && !strings.Contains(dq.Expr, "dbprobe_schedule_lag_seconds") {
			continue
		}
		checked++
		expr, err := grafana.Expand(dq.Expr, grafana.AllVars("1m"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := prom.Await(ctx, expr, func(s []promtest.Sample) bool {
			for _, x := range s {
				if v, err := strconv.ParseFloat(x.Value, 64); err == nil && !math.IsNaN(v) {
					return true
				}
			}
			return false
		}); err != nil {
			t.Errorf("panel %q: no data from native histograms: %v", dq.Panel, err)
		}
	}
	if checked < 3 {
		t.Errorf("checked %d latency and lag queries of the dashboard, want at least 3", checked)
	}
}

// TestReloadEndpoint: POST /-/reload reloads, as in Prometheus, once
// turned on; a refused configuration answers 500 with the reason; other
// methods 405; without a reloader, 404.
func TestReloadEndpoint(t *testing.T) {
	var fail atomic.Bool
	var calls atomic.Int32
	base := start(t, Options{Gatherer: prometheus.NewRegistry(), EnableLifecycle: true, Reload: func(context.Context) error {
		calls.Add(1)
		if fail.Load() {
			return errors.New("invalid config dbprobe.yaml: targets[0].interval: must be at least 10ms (got 1ms)")
		}
		return nil
	}})
	if code, body := post(t, base+"/-/reload", nil); code != 200 || body != "Reloaded.\n" {
		t.Errorf("POST /-/reload = %d %q", code, body)
	}
	fail.Store(true)
	if code, body := post(t, base+"/-/reload", nil); code != 500 || !strings.Contains(body, "targets[0].interval") {
		t.Errorf("refused POST /-/reload = %d %q", code, body)
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d reloads, want 2", n)
	}
	noReloader := start(t, Options{Gatherer: prometheus.NewRegistry(), EnableLifecycle: true})
	if code, _ := post(t, noReloader+"/-/reload", nil); code != 404 {
		t.Errorf("POST /-/reload without a reloader = %d, want 404", code)
	}
}

// TestReloadRefused: the reload endpoint is off unless turned on (anyone
// who reaches the port could reload otherwise), and a browser's
// cross-origin POST is refused even when it is on: a page open on the
// host must not be able to reload dbprobe with a form. Both answer 403
// saying why, and never reach the reloader.
func TestReloadRefused(t *testing.T) {
	var calls atomic.Int32
	reload := func(context.Context) error { calls.Add(1); return nil }
	off := start(t, Options{Gatherer: prometheus.NewRegistry(), Reload: reload})
	on := start(t, Options{Gatherer: prometheus.NewRegistry(), Reload: reload, EnableLifecycle: true})
	tests := []struct {
		name   string
		base   string
		header http.Header
		want   string // in the 403's body
	}{
		{"off", off, nil, "--web.enable-lifecycle"},
		{"off, same origin", off, http.Header{"Sec-Fetch-Site": {"same-origin"}}, "http.enable_lifecycle"},
		{"cross-site form", on, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/x-www-form-urlencoded"}}, "Cross-origin"},
		{"same-site other port", on, http.Header{"Sec-Fetch-Site": {"same-site"}}, "Cross-origin"},
		{"older browser, foreign origin", on, http.Header{"Origin": {"http://evil.example"}}, "Cross-origin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.base+"/-/reload", tc.header)
			if code != http.StatusForbidden || !strings.Contains(body, tc.want) {
				t.Errorf("POST /-/reload = %d %q, want 403 naming %q", code, body, tc.want)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d reloads through refused requests, want 0", n)
	}
	// What curl sends, or a page served by dbprobe itself, still reloads.
	for _, h := range []http.Header{nil, {"Sec-Fetch-Site": {"same-origin"}}} {
		if code, body := post(t, on+"/-/reload", h); code != 200 {
			t.Errorf("POST /-/reload with %v = %d %q, want 200", h, code, body)
		}
	}
}
