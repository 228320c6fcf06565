// Package web is dbprobe's HTTP server: Prometheus metrics, health and
// readiness, the live report as JSON, and a status page. TLS and basic
// authentication come from a Prometheus web configuration file
// (exporter-toolkit), as for every Prometheus exporter. docs/http.md
// documents the endpoints.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	toolkit "github.com/prometheus/exporter-toolkit/web"
	"gopkg.in/yaml.v3"

	"github.com/dbprobe/dbprobe/live"
	"github.com/dbprobe/dbprobe/report"
)

// ShutdownTimeout bounds how long Serve waits for requests in flight once
// its context is done.
const ShutdownTimeout = 5 * time.Second

// ErrWebConfig marks an unusable web configuration file: the user's to fix.
var ErrWebConfig = errors.New("invalid web configuration file")

// Options configure the server. Gatherer is required; every func may be nil.
type Options struct {
	// Listen is host:port; port 0 picks a free port (see Server.Addr).
	Listen string
	// WebConfigFile is a Prometheus web configuration file (TLS, basic
	// auth); empty serves plain HTTP without authentication.
	WebConfigFile string
	Gatherer      prometheus.Gatherer
	// NativeGatherer, when set, serves the scrapes that negotiate protobuf
	// (the format of native histograms) instead of Gatherer: see
	// metrics.Metrics.NativeGatherer.
	NativeGatherer prometheus.Gatherer
	// Ready reports whether every stream finished its first probe; it
	// answers /-/ready. Nil: always ready.
	Ready func() bool
	// Report writes the live report as JSON (the same document as `dbprobe
	// report --format json`) for /api/v1/report. Nil: 404.
	Report func(ctx context.Context, w io.Writer) error
	// ReportHTML writes the report so far as the HTML report (timeline
	// included) for /report, linked from the status page. Nil: 404.
	ReportHTML func(ctx context.Context, w io.Writer) error
	// Live writes the HTML report so far under the live status table, for
	// the page at /: current state per stream, then the timeline. Nil: the
	// table alone.
	Live func(ctx context.Context, w io.Writer, live report.Live) error
	// Status replaces the status page served at /. Nil: a banner per
	// target of Board with links to the rest.
	Status func(ctx context.Context, w io.Writer) error
	// Board is what is happening now to every target, for the built-in
	// status page and GET /live.
	Board func() []live.Target
	// Reload reloads the configuration, for POST /-/reload; nil: 404.
	Reload func(ctx context.Context) error
	// EnableLifecycle serves POST /-/reload; false answers it 403, as
	// Prometheus does without --web.enable-lifecycle.
	EnableLifecycle bool
	// Now is the clock of the status page and of RenderEvery (tests); nil
	// is time.Now.
	Now     func() time.Time
	Version string
	Logger  *slog.Logger
	// RenderEvery is the least time between two renders of one page (the
	// report as JSON, the HTML report, the status page and its live
	// part): clients asking in between share the last render. Default
	// DefaultRenderEvery.
	RenderEvery time.Duration
	// MaxConns caps the connections open at once; 0 derives it from
	// RLIMIT_NOFILE (see DefaultMaxConns).
	MaxConns int
}

// Handler returns the routes without TLS or authentication (the toolkit
// wraps them in Serve). Responses are compressed for clients that accept
// gzip (or zstd) at the fastest level: Prometheus may scrape every second,
// and with many streams the default level costs twice the CPU for a body a
// fifth smaller (docs/benchmarks.md).
func Handler(o Options) http.Handler {
	compress, err := gzhttp.NewWrapper(gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		panic(fmt.Sprintf("web: constant compression options rejected: %v", err))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(o))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "Healthy.\n")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if o.Ready != nil && !o.Ready() {
			text(w, http.StatusServiceUnavailable, "Not ready: some streams have not finished their first probe.\n")
			return
		}
		text(w, http.StatusOK, "Ready.\n")
	})
	// As in Prometheus: POST only, opt-in, behind the web configuration
	// like every path; 500 with the reason when the configuration is
	// refused. Unlike Prometheus, a browser's cross-origin POST is refused
	// too: without basic auth, any page open on the host could otherwise
	// make dbprobe reload, since a form post needs no CORS preflight.
	csrf := http.NewCrossOriginProtection()
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		if !o.EnableLifecycle {
			text(w, http.StatusForbidden, "Reloading over HTTP is off: start dbprobe with --web.enable-lifecycle or set http.enable_lifecycle: true, or send SIGHUP.\n")
			return
		}
		if err := csrf.Check(r); err != nil {
			text(w, http.StatusForbidden, "Cross-origin reload refused: a web page may not reload dbprobe; use curl -X POST or SIGHUP.\n")
			return
		}
		if o.Reload == nil {
			text(w, http.StatusNotFound, "No configuration file to reload.\n")
			return
		}
		if err := o.Reload(r.Context()); err != nil {
			text(w, http.StatusInternalServerError, "Reload refused, the running configuration stays: "+err.Error()+"\n")
			return
		}
		text(w, http.StatusOK, "Reloaded.\n")
	})
	// One render at a time, of any page (see renderer).
	slot := make(chan struct{}, 1)
	page := func(contentType string, fn func(context.Context, io.Writer) error) http.HandlerFunc {
		if fn == nil {
			return func(w http.ResponseWriter, _ *http.Request) {
				text(w, http.StatusNotFound, "No live report in this process.\n")
			}
		}
		rd := newRenderer(o, slot, fn)
		return func(w http.ResponseWriter, r *http.Request) { serve(w, r, o.logger(), contentType, rd) }
	}
	mux.HandleFunc("GET /api/v1/report", page("application/json", o.Report))
	mux.HandleFunc("GET /report", page("text/html; charset=utf-8", o.ReportHTML))
	status := o.Status
	if status == nil {
		status = func(ctx context.Context, w io.Writer) error { return statusPage(ctx, w, o) }
	}
	mux.HandleFunc("GET /{$}", page("text/html; charset=utf-8", status))
	live := page("text/html; charset=utf-8", func(_ context.Context, w io.Writer) error { return liveFragment(w, o) })
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		live(w, r)
	})
	return compress(mux)
}

// metricsHandler serves o.Gatherer, or o.NativeGatherer to scrapes that
// negotiate protobuf.
func metricsHandler(o Options) http.Handler {
	// Protobuf, OpenMetrics and text, in promhttp's order of preference;
	// the handlers below negotiate with the same list.
	formats := expfmt.DefaultOpenMetricsAcceptedFormats()
	serve := func(g prometheus.Gatherer) http.Handler {
		return promhttp.HandlerFor(g, promhttp.HandlerOpts{
			ErrorLog:        slogErrorLog{o.logger()},
			ErrorHandling:   promhttp.ContinueOnError,
			AcceptedFormats: formats,
			// Handler compresses, faster than promhttp's default level.
			DisableCompression: true,
		})
	}
	text := serve(o.Gatherer)
	if o.NativeGatherer == nil {
		return text
	}
	native := serve(o.NativeGatherer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if expfmt.NegotiateAccept(r.Header, formats...).FormatType() == expfmt.TypeProtoDelim {
			native.ServeHTTP(w, r)
			return
		}
		text.ServeHTTP(w, r)
	})
}

// serve answers with rd's page. Pages are rendered whole before the first
// byte is sent, so that a failing renderer yields a 500 rather than half a
// page with a 200.
func serve(w http.ResponseWriter, r *http.Request, log *slog.Logger, contentType string, rd *renderer) {
	body, err := rd.get(r.Context())
	if r.Context().Err() != nil {
		return // the client left
	}
	if err != nil {
		log.Error("render page", "path", r.URL.Path, "err", err)
		text(w, http.StatusInternalServerError, "Rendering failed; see dbprobe's log.\n")
		return
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(body)
}

func text(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, s)
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// slogErrorLog adapts a slog.Logger to promhttp's error log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) { l.log.Error("serve metrics", "err", fmt.Sprint(v...)) }

// Server is a bound, not yet serving, HTTP server.
type Server struct {
	l    *limitListener
	srv  *http.Server
	opts Options
}

// Listen checks the web configuration file and binds the address, so that
// `dbprobe run` fails before probing when either is wrong; then call Serve,
// or Close. Errors about the file wrap ErrWebConfig.
func Listen(o Options) (*Server, error) {
	if o.Listen == "" {
		// net.Listen would pick a port on every interface.
		return nil, errors.New("http listen: no address (an empty http.listen turns the server off: do not call Listen)")
	}
	if err := validateWebConfig(o.WebConfigFile); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrWebConfig, o.WebConfigFile, err)
	}
	tl, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	n := o.MaxConns
	if n <= 0 {
		n = DefaultMaxConns()
	}
	l := newLimitListener(tl, n)
	srv := &http.Server{
		Handler:           Handler(o),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ConnState:         l.connState,
		ErrorLog:          slog.NewLogLogger(o.logger().Handler(), slog.LevelWarn),
	}
	// The toolkit answers 401 (and 429) in a handler it puts around ours
	// when Serve starts; closeRefused must go around that. The first
	// Accept runs in Serve's goroutine after the toolkit set srv.Handler
	// and before any connection is served, so setting it there is safe.
	l.first = func() { srv.Handler = closeRefused(srv.Handler) }
	return &Server{l: l, srv: srv, opts: o}, nil
}

// validateWebConfig refuses, besides what the toolkit refuses, a file with
// no setting in it: the toolkit would serve plain HTTP without
// authentication, while whoever named the file believes the server
// protected.
func validateWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := toolkit.Validate(path); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.MappingNode && len(doc.Content[0].Content) == 0) {
		return errors.New("the file sets nothing (empty or comments only), which would serve plain HTTP without authentication: " +
			"set tls_server_config and/or basic_auth_users, or drop the setting to serve plain HTTP on purpose")
	}
	return nil
}

// OpenConns is the number of connections open now.
func (s *Server) OpenConns() int { return s.l.open() }

// Addr is the address the server is bound to.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Close releases the address of a server that will not Serve (dbprobe
// failed to start after Listen). After Serve, use its context instead.
func (s *Server) Close() error { return s.l.Close() }

// Serve serves until ctx is done, then shuts down gracefully (bounded by
// ShutdownTimeout) and returns nil; it returns early only if serving fails.
func (s *Server) Serve(ctx context.Context) error {
	cfg := s.opts.WebConfigFile
	flags := &toolkit.FlagConfig{WebListenAddresses: &[]string{s.Addr()}, WebConfigFile: &cfg}
	served := make(chan error, 1)
	go func() { served <- toolkit.Serve(s.l, s.srv, flags, s.opts.logger()) }()
	select {
	case err := <-served:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-served // http.ErrServerClosed once Shutdown began
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
