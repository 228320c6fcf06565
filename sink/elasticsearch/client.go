package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/dbprobe/dbprobe/config"
)

// ErrNotElasticsearch means the server answered a request successfully but
// without the X-Elastic-Product: Elasticsearch header every Elasticsearch
// since 7.14 sends: it is something else (OpenSearch, a proxy answering on
// its own, another product).
var ErrNotElasticsearch = errors.New("the server is not Elasticsearch: its answer lacks the X-Elastic-Product: Elasticsearch header (dbprobe ships to Elasticsearch 8.x and 9.x only)")

// ResponseError is an error answer from Elasticsearch.
type ResponseError struct {
	Status int    // HTTP status
	Type   string // error.type, e.g. security_exception
	Reason string // error.reason
}

func (e *ResponseError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("elasticsearch answered %d: %s", e.Status, e.Reason)
	}
	return fmt.Sprintf("elasticsearch answered %d %s: %s", e.Status, e.Type, e.Reason)
}

// Transient reports whether retrying the same request later may succeed
// without anyone changing anything: overload and server-side failures.
func (e *ResponseError) Transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Client talks to one Elasticsearch cluster. It is safe for concurrent use.
type Client struct {
	es       *elasticsearch.Client
	timeout  time.Duration
	compress bool
}

// NewClient builds a client from the sink's configuration: addresses,
// credentials, CA file or fingerprint, request timeout and compression.
// It makes no request. cfg need not be validated beyond its addresses,
// so a report can build one from a bare URL.
func NewClient(cfg *config.Elasticsearch) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %q holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if fp := cfg.Fingerprint(); fp != "" {
		want, err := hex.DecodeString(fp)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("ca_fingerprint is not a SHA-256 fingerprint")
		}
		// Trust exactly the certificate chain that contains the pinned
		// certificate, as Elasticsearch's own enrolment does; the chain is
		// not otherwise verified.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				if sum := sha256.Sum256(c.Raw); bytes.Equal(sum[:], want) {
					return nil
				}
			}
			return fmt.Errorf("no certificate of the server matches ca_fingerprint")
		}
	}
	tr.TLSClientConfig = tc
	user, password := cfg.BasicAuth()
	timeout := cfg.Timeout.Duration
	if timeout <= 0 {
		timeout = config.DefaultESTimeout
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses:    cfg.Addresses,
		Username:     user,
		Password:     password,
		APIKey:       cfg.EncodedAPIKey(),
		ServiceToken: cfg.ServiceToken,
		// dbprobe retries with its own backoff; the transport's immediate
		// retries would only multiply load on a struggling cluster and
		// buffer every request body a second time.
		DisableRetry:             true,
		CompressRequestBody:      cfg.Compress,
		CompressRequestBodyLevel: 1,
		Transport:                productCheck{tr},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	return &Client{es: es, timeout: timeout, compress: cfg.Compress}, nil
}

// productCheck refuses successful answers that lack the product header, so
// the caller gets ErrNotElasticsearch rather than the client library's
// unclassifiable error.
type productCheck struct{ next http.RoundTripper }

func (p productCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := p.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 && res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		res.Body.Close()
		return nil, ErrNotElasticsearch
	}
	return res, nil
}

// call performs req within the client's timeout, decodes a 2xx answer into
// out (when not nil) and turns any other answer into a *ResponseError.
func (c *Client) call(ctx context.Context, req esapi.Request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := req.Do(ctx, c.es)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.IsError() {
		return responseError(res.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// responseError decodes Elasticsearch's error envelope; a body that is not
// one (a proxy's HTML page) is quoted, shortened.
func responseError(status int, body []byte) *ResponseError {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	e := &ResponseError{Status: status}
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		var c errorCause
		if json.Unmarshal(env.Error, &c) == nil && c.Type != "" {
			e.Type, e.Reason = c.Type, c.text()
			return e
		}
		var s string
		if json.Unmarshal(env.Error, &s) == nil {
			e.Reason = s
			return e
		}
	}
	const max = 200
	e.Reason = string(bytes.TrimSpace(body))
	if len(e.Reason) > max {
		e.Reason = e.Reason[:max] + "..."
	}
	if e.Reason == "" {
		e.Reason = http.StatusText(status)
	}
	return e
}

// errorCause is Elasticsearch's error object, in answers and bulk items.
type errorCause struct {
	Type     string      `json:"type"`
	Reason   string      `json:"reason"`
	CausedBy *errorCause `json:"caused_by,omitempty"`
}

// text is the reason with its causes, as one line.
func (c *errorCause) text() string {
	s := c.Reason
	for cb := c.CausedBy; cb != nil; cb = cb.CausedBy {
		s += fmt.Sprintf(" (caused by %s: %s)", cb.Type, cb.Reason)
	}
	return s
}

// bulkResult is one item of a _bulk answer.
type bulkResult struct {
	Status int         `json:"status"`
	Error  *errorCause `json:"error"`
}

type bulkAnswer struct {
	Errors bool       `json:"errors"`
	Items  []bulkItem `json:"items"`
}

type bulkItem struct {
	Create *bulkResult `json:"create"`
	Index  *bulkResult `json:"index"`
}

// result is the item's result; an item without one counts as a server
// error, to be retried.
func (i *bulkItem) result() *bulkResult {
	switch {
	case i.Create != nil:
		return i.Create
	case i.Index != nil:
		return i.Index
	}
	return &bulkResult{Status: http.StatusInternalServerError, Error: &errorCause{Type: "missing_item", Reason: "bulk item without a create result"}}
}

// What became of one document of a _bulk request.
type itemOutcome int

const (
	itemStored    itemOutcome = iota
	itemDuplicate             // 409: stored before under its _id
	itemRetry                 // refused for now
	itemRefused               // refused for good: a document error
)

func (r *bulkResult) outcome() itemOutcome {
	switch {
	case r.Status >= 200 && r.Status < 300:
		return itemStored
	case r.Status == http.StatusConflict:
		return itemDuplicate
	case retryItem(r.Status):
		return itemRetry
	}
	return itemRefused
}

// cause is the item's error, or one made of its status.
func (r *bulkResult) cause() *errorCause {
	if r.Error != nil {
		return r.Error
	}
	return &errorCause{Type: "unknown", Reason: http.StatusText(r.Status)}
}

// retryItem tells item statuses worth retrying (the cluster is busy, a
// shard is unavailable, the index is blocked or not writable by this user
// yet) from document errors, which retrying cannot fix.
func retryItem(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout:
		return true
	}
	return status >= 500
}

// bulk sends body, n NDJSON create actions, to index's _bulk API, asking
// only for what per-item results need; an answer without n items is an
// error. The transport reads body until released is closed; the caller
// must not change those bytes before.
func (c *Client) bulk(ctx context.Context, index string, body []byte, n int) (ans *bulkAnswer, released <-chan struct{}, err error) {
	rb := &requestBody{r: bytes.NewReader(body), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http:///"+index+"/_bulk?filter_path=errors,items.*.status,items.*.error", rb)
	if err != nil {
		rb.Close()
		return nil, rb.done, fmt.Errorf("bulk request: %w", err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := c.es.Perform(req)
	if c.compress {
		// The transport gzipped the body into its own buffer before
		// sending and never closes ours.
		rb.Close()
	}
	if err != nil {
		return nil, rb.done, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, rb.done, fmt.Errorf("read bulk answer: %w", err)
	}
	if res.StatusCode > 299 {
		return nil, rb.done, responseError(res.StatusCode, b)
	}
	ans = &bulkAnswer{}
	if err := json.Unmarshal(b, ans); err != nil {
		return nil, rb.done, fmt.Errorf("decode bulk answer: %w", err)
	}
	if len(ans.Items) != n {
		return nil, rb.done, fmt.Errorf("elasticsearch answered %d bulk items for %d documents", len(ans.Items), n)
	}
	return ans, rb.done, nil
}

// requestBody tells when the HTTP transport is done with a request body:
// it closes the body once it has sent it or given up.
type requestBody struct {
	r    *bytes.Reader
	once sync.Once
	done chan struct{}
}

func (b *requestBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *requestBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}
