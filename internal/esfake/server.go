// Package esfake is an in-process fake Elasticsearch 8.x for tests: an
// httptest server that speaks the parts of the REST protocol dbprobe uses
// the way a real cluster does, so go-elasticsearch v8 accepts it and the
// code under test meets real-world answers.
//
// What it does as Elasticsearch does: the X-Elastic-Product header on every
// response, GET /, ILM policies, component and composable index templates
// (priority, same-priority overlap rejected, missing components rejected, a
// built-in logs-*-* template at priority 100), data streams (auto-created
// from a matching template, backing indices .ds-<stream>-<yyyy.MM.dd>-<gen>,
// only op_type create accepted, @timestamp required, rollover), _bulk with
// per-item results in request order, 409 on a duplicate _id within a backing
// index, documents checked against the mapped field types, filter_path,
// point in time, search with sort and search_after (with the implicit
// _shard_doc tiebreaker), and the standard error envelope.
//
// Faults can be injected: the server down (connection refused or dropped),
// slow answers, whole-request errors (429, 503, ...), per-item statuses
// chosen by a predicate, a connection reset in the middle of a _bulk
// response (after the documents were stored), 403 on chosen requests and a
// missing product header.
//
// A Server is safe for concurrent use.
package esfake

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Version is the Elasticsearch version the fake claims to be.
const Version = "8.19.7"

// Storage chooses how much of each document the fake keeps.
type Storage int

const (
	// StoreAll keeps every document's source: search works.
	StoreAll Storage = iota
	// StoreIDs keeps only _ids: duplicates are still detected (409) and
	// counted, at a fraction of the memory and CPU. Documents are not
	// checked against the mappings and search returns no hits.
	StoreIDs
	// StoreCount keeps nothing but counts: no 409s, no checks. For
	// benchmarks.
	StoreCount
)

// Options configure a Server.
type Options struct {
	// Now is the fake's clock (backing index dates, PIT expiry). Default
	// time.Now.
	Now func() time.Time
	// Storage says what is kept of documents.
	Storage Storage
	// When set, requests must authenticate with this API key (the encoded
	// form), this user and password, or this service token.
	APIKey       string
	Username     string
	Password     string
	ServiceToken string
	// TLS serves HTTPS with httptest's self-signed certificate.
	TLS bool
	// NoBuiltinTemplates leaves out the built-in logs-*-* template.
	NoBuiltinTemplates bool
}

// DownMode is how the server is unavailable.
type DownMode int

const (
	// Up serves normally.
	Up DownMode = iota
	// Refuse closes the listening socket: connections are refused.
	Refuse
	// Drop accepts connections and closes them at once, and closes the
	// open ones: requests fail with EOF or a reset.
	Drop
)

// Server is the fake cluster.
type Server struct {
	// URL is the base URL of the server, e.g. http://127.0.0.1:40123.
	URL string

	srv  *httptest.Server
	gate *gate
	opts Options
	now  func() time.Time

	noProduct atomic.Bool
	slow      atomic.Int64 // nanoseconds

	mu         sync.Mutex
	faults     faults
	policies   map[string]json.RawMessage
	components map[string]*componentTemplate
	templates  map[string]*indexTemplate
	streams    map[string]*dataStream
	indices    map[string]*index
	pits       map[string]*pit
	shardDoc   int64
	counts     Counts
}

// Counts are what the server has seen, for tests to assert on.
type Counts struct {
	Requests     int // every HTTP request answered
	BulkRequests int // _bulk requests that reached item processing
	Created      int // documents stored
	Conflicts    int // create items answered 409
	ItemFaults   int // items failed by an injected fault
	Searches     int // _search requests
	OpenPITs     int // point in time opened and not closed
}

type faults struct {
	status     int // whole-request status
	statusLeft int // how many more requests fail; <0 = until cleared
	item       func(id string, source []byte) int
	resetLeft  int
	deny       func(r *http.Request) bool
}

// New starts a fake cluster. Call Close when done (t.Cleanup(s.Close)).
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:       opts,
		now:        opts.Now,
		policies:   map[string]json.RawMessage{},
		components: map[string]*componentTemplate{},
		templates:  map[string]*indexTemplate{},
		streams:    map[string]*dataStream{},
		indices:    map[string]*index{},
		pits:       map[string]*pit{},
	}
	if !opts.NoBuiltinTemplates {
		s.templates["logs"] = &indexTemplate{
			name: "logs", patterns: []string{"logs-*-*"}, priority: 100, dataStream: true, builtin: true,
			raw: json.RawMessage(`{"index_patterns":["logs-*-*"],"data_stream":{},"priority":100,"composed_of":[],"_meta":{"managed":true,"description":"built-in"}}`),
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("esfake: listen: %v", err))
	}
	s.gate = newGate(ln)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener = s.gate
	// Handshake failures are what TLS tests provoke; they are not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.TLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() {
	s.gate.restore() // so httptest's Close does not wait on a refused listener
	s.srv.Close()
}

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Certificate returns the TLS certificate's DER bytes (TLS servers only).
func (s *Server) Certificate() []byte {
	if c := s.srv.Certificate(); c != nil {
		return c.Raw
	}
	return nil
}

// SetDown makes the server unavailable in the given way, or available again
// with Up. Stored data is kept.
func (s *Server) SetDown(m DownMode) {
	switch m {
	case Up:
		s.gate.restore()
		s.gate.drop.Store(false)
	case Refuse:
		s.gate.refuse()
		s.srv.CloseClientConnections()
	case Drop:
		s.gate.drop.Store(true)
		s.srv.CloseClientConnections()
	}
}

// SetSlow delays every answer by d (0 for none). A client giving up earlier
// sees its own timeout.
func (s *Server) SetSlow(d time.Duration) { s.slow.Store(int64(d)) }

// FailRequests answers the next n requests (any endpoint; n < 0: until
// FailRequests(0, 0)) with the whole-request error status: 429 (rejected
// execution), 503 (no master), or any other status with a generic body.
func (s *Server) FailRequests(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.status, s.faults.statusLeft = status, n
}

// SetItemFault makes fn decide the status of every _bulk item: 0 processes
// the item normally; 429, 400, 403, 503 (or any other 4xx/5xx) fail it with
// the error Elasticsearch gives for that status. nil removes the fault.
func (s *Server) SetItemFault(fn func(id string, source []byte) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.item = fn
}

// ResetBulk cuts the connection in the middle of the next n _bulk
// responses, after the items were processed and stored.
func (s *Server) ResetBulk(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.resetLeft = n
}

// Deny answers requests for which fn is true with 403 security_exception,
// as a cluster does for a user lacking a privilege. nil removes it.
func (s *Server) Deny(fn func(r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.deny = fn
}

// SetProductHeader turns the X-Elastic-Product header on or off.
func (s *Server) SetProductHeader(on bool) { s.noProduct.Store(!on) }

// Counts returns what the server has seen so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.OpenPITs = len(s.pits)
	return c
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.noProduct.Load() {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	s.mu.Lock()
	s.counts.Requests++
	f := &s.faults
	status := 0
	if f.statusLeft != 0 {
		status = f.status
		if f.statusLeft > 0 {
			f.statusLeft--
		}
	}
	deny := f.deny != nil && f.deny(r)
	s.mu.Unlock()

	if !s.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, "security_exception",
			fmt.Sprintf("missing authentication credentials for REST request [%s]", r.URL.Path))
		return
	}
	if deny {
		writeError(w, http.StatusForbidden, "security_exception",
			fmt.Sprintf("action [%s] is unauthorized for user [dbprobe] with effective roles [dbprobe_writer], this action is granted by the cluster privileges [manage_index_templates,manage,all]", actionName(r)))
		return
	}
	if status != 0 {
		writeRequestFault(w, status)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	// Slow after reading the body: the server then notices a client that
	// gives up, and does not process its request.
	if d := time.Duration(s.slow.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	s.route(w, r, body)
}

func (s *Server) authenticated(r *http.Request) bool {
	o := &s.opts
	if o.APIKey == "" && o.Username == "" && o.ServiceToken == "" {
		return true
	}
	// Authentication schemes are case-insensitive (clients send "APIKey"
	// or "ApiKey").
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case o.APIKey != "" && strings.EqualFold(scheme, "ApiKey") && cred == o.APIKey:
		return true
	case o.ServiceToken != "" && strings.EqualFold(scheme, "Bearer") && cred == o.ServiceToken:
		return true
	case o.Username != "":
		u, p, ok := r.BasicAuth()
		return ok && u == o.Username && p == o.Password
	}
	return false
}

func actionName(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/_index_template"):
		return "indices:admin/index_template/put"
	case strings.HasPrefix(p, "/_component_template"):
		return "cluster:admin/component_template/put"
	case strings.HasPrefix(p, "/_ilm"):
		return "cluster:admin/ilm/put"
	case strings.HasPrefix(p, "/_data_stream"):
		return "indices:admin/data_stream/create"
	case strings.HasSuffix(p, "/_bulk"):
		return "indices:data/write/bulk"
	}
	return "cluster:monitor/main"
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("request body is not gzip: %w", err)
		}
		defer z.Close()
		rd = z
	}
	return io.ReadAll(rd)
}

// route dispatches on the path segments: "" (root), "_api/...", or
// "<index>/_api".
func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	m := r.Method
	first := segs[0]
	switch {
	case first == "" && (m == http.MethodGet || m == http.MethodHead):
		s.info(w, r)
	case first == "_bulk" && (m == http.MethodPost || m == http.MethodPut):
		s.bulk(w, r, "", body)
	case first == "_search" && (m == http.MethodPost || m == http.MethodGet):
		s.search(w, r, "", body)
	case first == "_pit" && m == http.MethodDelete:
		s.closePIT(w, body)
	case first == "_ilm" && len(segs) == 3 && segs[1] == "policy":
		s.ilmPolicy(w, r, segs[2], body)
	case first == "_component_template":
		s.componentTemplate(w, r, segs[1:], body)
	case first == "_index_template":
		s.indexTemplate(w, r, segs[1:], body)
	case first == "_data_stream":
		s.dataStreamAPI(w, r, segs[1:])
	case !strings.HasPrefix(first, "_") && len(segs) == 2:
		s.indexAPI(w, r, first, segs[1], body)
	default:
		writeError(w, http.StatusBadRequest, "illegal_argument_exception",
			fmt.Sprintf("request [%s %s] is not supported by esfake", m, r.URL.Path))
	}
}

func (s *Server) indexAPI(w http.ResponseWriter, r *http.Request, target, api string, body []byte) {
	m := r.Method
	switch {
	case api == "_bulk" && (m == http.MethodPost || m == http.MethodPut):
		s.bulk(w, r, target, body)
	case api == "_search" && (m == http.MethodPost || m == http.MethodGet):
		s.search(w, r, target, body)
	case api == "_pit" && m == http.MethodPost:
		s.openPIT(w, r, target)
	case api == "_rollover" && m == http.MethodPost:
		s.rollover(w, target)
	case api == "_refresh" && (m == http.MethodPost || m == http.MethodGet):
		writeJSON(w, r, http.StatusOK, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	case api == "_count" && (m == http.MethodPost || m == http.MethodGet):
		s.count(w, r, target, body)
	case api == "_mapping" && m == http.MethodGet:
		s.getMapping(w, r, target)
	default:
		writeError(w, http.StatusBadRequest, "illegal_argument_exception",
			fmt.Sprintf("request [%s %s] is not supported by esfake", m, r.URL.Path))
	}
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, map[string]any{
		"name":         "esfake-0",
		"cluster_name": "esfake",
		"cluster_uuid": "esfake-cluster-uuid-000001",
		"version": map[string]any{
			"number": Version, "build_flavor": "default", "build_type": "docker",
			"build_hash": "0000000000000000000000000000000000000000", "build_date": "2026-01-01T00:00:00.000000000Z",
			"build_snapshot": false, "lucene_version": "9.12.2",
			"minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0",
		},
		"tagline": "You Know, for Search",
	})
}

// writeJSON answers v, honouring ?filter_path and ?pretty-less defaults.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "exception", err.Error())
		return
	}
	if fp := r.URL.Query().Get("filter_path"); fp != "" {
		b = filterJSON(b, fp)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorCause is Elasticsearch's error object.
type errorCause struct {
	Type      string       `json:"type"`
	Reason    string       `json:"reason"`
	CausedBy  *errorCause  `json:"caused_by,omitempty"`
	RootCause []errorCause `json:"root_cause,omitempty"`
}

// writeError writes the standard envelope:
// {"error":{"root_cause":[...],"type":..,"reason":..},"status":N}.
func writeError(w http.ResponseWriter, status int, typ, reason string) {
	writeCause(w, status, errorCause{Type: typ, Reason: reason})
}

func writeCause(w http.ResponseWriter, status int, c errorCause) {
	root := c
	root.CausedBy = nil
	c.RootCause = []errorCause{root}
	b, _ := json.Marshal(map[string]any{"error": c, "status": status})
	writeRaw(w, status, b)
}

// writeRequestFault writes the whole-request error a cluster gives for
// status.
func writeRequestFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		writeError(w, status, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=104759862, replica_bytes=0, all_bytes=104759862, coordinating_operation_bytes=20862272, max_coordinating_and_primary_bytes=107374182]")
	case http.StatusServiceUnavailable:
		writeError(w, status, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];")
	default:
		writeError(w, status, "exception", fmt.Sprintf("esfake injected status %d", status))
	}
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// gate is the server's listener. It can refuse connections (by closing the
// socket and reopening it on the same address later) or drop them, without
// the HTTP server noticing either.
type gate struct {
	addr net.Addr
	drop atomic.Bool

	mu     sync.Mutex
	ln     net.Listener // nil while refusing
	wake   chan struct{}
	closed bool
}

func newGate(ln net.Listener) *gate {
	return &gate{addr: ln.Addr(), ln: ln, wake: make(chan struct{})}
}

func (g *gate) Accept() (net.Conn, error) {
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, net.ErrClosed
		}
		ln, wake := g.ln, g.wake
		g.mu.Unlock()
		if ln == nil {
			<-wake
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			g.mu.Lock()
			swapped := g.ln != ln && !g.closed
			g.mu.Unlock()
			if swapped {
				continue
			}
			return nil, err
		}
		if g.drop.Load() {
			c.Close()
			continue
		}
		return c, nil
	}
}

func (g *gate) refuse() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil || g.closed {
		return
	}
	g.ln.Close()
	g.ln = nil
}

func (g *gate) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil || g.closed {
		return
	}
	var err error
	for i := 0; i < 100; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", g.addr.String()); err == nil {
			g.ln = ln
			close(g.wake)
			g.wake = make(chan struct{})
			return
		}
		time.Sleep(10 * time.Millisecond) // the port is ours again once the kernel lets go of it
	}
	panic(fmt.Sprintf("esfake: cannot listen on %s again: %v", g.addr, err))
}

func (g *gate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	close(g.wake)
	if g.ln != nil {
		return g.ln.Close()
	}
	return nil
}

func (g *gate) Addr() net.Addr { return g.addr }

// decodeJSON decodes b keeping numbers exact.
func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
