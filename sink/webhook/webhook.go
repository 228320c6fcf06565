// Package webhook posts dbprobe's transitions (read-only on/off, interruption
// windows opened/closed, cutover, DNS change, stale connections, Blue/Green
// phase) to an HTTP endpoint as JSON with a Slack-compatible "text" field,
// for users without a Prometheus and Alertmanager stack.
//
// Delivery is in order, one POST per transition, from a bounded queue:
// Observe never blocks the pipeline. A failed POST (network error, 408, 429,
// 5xx) is retried with exponential backoff until RetryFor has passed since
// its first attempt; other answers are final. When the queue is full the
// oldest notification is dropped, so the receiver always learns the latest
// state. Every transition is also in the journal, so nothing dropped here is
// lost.
//
// The URL and header values may carry credentials: they are sent, never
// logged.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/metrics"
)

// Backoff bounds between attempts of one notification.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
)

// transitions are the finding actions that are posted.
var transitions = map[string]bool{
	event.ActionReadOnlyOn: true, event.ActionReadOnlyOff: true,
	event.ActionReadWindowOpened: true, event.ActionReadWindowClosed: true,
	event.ActionWriteWindowOpened: true, event.ActionWriteWindowClosed: true,
	event.ActionCutover: true, event.ActionDNSChange: true,
	event.ActionStaleStarted: true, event.ActionStaleEnded: true,
	event.ActionBlueGreenPhase: true,
}

// IsTransition reports whether e is a finding that is posted.
func IsTransition(e *event.Event) bool {
	return e.Event.Kind == event.KindState && transitions[e.Event.Action]
}

// Options configure a Notifier.
type Options struct {
	Name      string // in logs and as the sink label "webhook:<name>"
	URL       string
	Headers   map[string]string
	Timeout   time.Duration // one POST
	RetryFor  time.Duration // retrying one notification; 0: one attempt
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between attempts; zero takes
	// the defaults.
	MinBackoff, MaxBackoff time.Duration
	// UserAgent is sent with every POST.
	UserAgent string
	// Client sends the POSTs; nil builds one that does not follow redirects
	// (a 3xx is final: following it would turn the POST into a GET).
	Client *http.Client
	Logger *slog.Logger
}

// FromConfig turns one validated notify.webhooks entry into Options.
func FromConfig(w config.Webhook) Options {
	return Options{Name: w.Name, URL: w.URL, Headers: w.Headers, Timeout: w.Timeout.Duration,
		RetryFor: w.RetryFor.Duration, QueueSize: w.QueueSize}
}

// Notifier delivers transitions to one webhook. Observe may be called from
// any goroutine; Run delivers them.
type Notifier struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	queue    []*event.Event // oldest first
	inFlight bool
	current  *event.Event // the one in flight
	failing  bool         // the last attempt failed
	failures uint64
	dropped  uint64
	// dropLogged silences the "queue full" log until a delivery succeeds.
	dropLogged bool

	wake chan struct{}
}

// New returns a Notifier; nothing is sent until Run.
func New(o Options) *Notifier {
	if o.QueueSize < 1 {
		o.QueueSize = config.DefaultWebhookQueueSize
	}
	if o.Timeout <= 0 {
		o.Timeout = config.DefaultWebhookTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{o: o, log: log.With("webhook", o.Name), wake: make(chan struct{}, 1)}
}

// Observe queues e if it is a transition; other events are ignored. It
// never blocks: with the queue full, the oldest queued notification is
// dropped and counted.
func (n *Notifier) Observe(e *event.Event) {
	if !IsTransition(e) {
		return
	}
	n.mu.Lock()
	if len(n.queue) >= n.o.QueueSize {
		n.queue[0] = nil
		n.queue = n.queue[1:]
		n.dropped++
		if !n.dropLogged {
			n.dropLogged = true
			n.log.Warn("webhook queue full: dropping the oldest notifications until a delivery succeeds; dbprobe_sink_dropped_total counts them",
				"queue_size", n.o.QueueSize)
		}
	}
	n.queue = append(n.queue, e)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Stats reports the queue and the counters, for metrics.Metrics.AddSink.
func (n *Notifier) Stats() metrics.SinkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	backlog := int64(len(n.queue))
	if n.inFlight {
		backlog++
	}
	st := metrics.SinkStats{Backlog: backlog, Failures: n.failures, Dropped: n.dropped, Up: !n.failing}
	oldest := n.current
	if !n.inFlight {
		oldest = nil
		if len(n.queue) > 0 {
			oldest = n.queue[0]
		}
	}
	if oldest != nil {
		st.LagSeconds = max(time.Since(oldest.Timestamp).Seconds(), 0)
	}
	return st
}

// Run delivers queued notifications in order until ctx is done. Then the
// notifications still queued are delivered, retried as usual, for at most
// one Timeout in all, and Run returns.
func (n *Notifier) Run(ctx context.Context) {
	for {
		e := n.next(ctx)
		if e == nil {
			break
		}
		n.deliver(ctx, e)
	}
	drain, cancel := context.WithTimeout(context.Background(), n.o.Timeout)
	defer cancel()
	for {
		e := n.pop()
		if e == nil {
			return
		}
		n.deliver(drain, e)
		if drain.Err() != nil {
			// deliver put it back; so is everything after it.
			for e := n.pop(); e != nil; e = n.pop() {
				n.giveUp(e, "dbprobe is stopping")
			}
			return
		}
	}
}

// next waits for a notification; nil once ctx is done.
func (n *Notifier) next(ctx context.Context) *event.Event {
	for {
		if ctx.Err() != nil {
			return nil
		}
		if e := n.pop(); e != nil {
			return e
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.wake:
		}
	}
}

func (n *Notifier) pop() *event.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inFlight, n.current = false, nil
	if len(n.queue) == 0 {
		return nil
	}
	e := n.queue[0]
	n.queue[0] = nil
	n.queue = n.queue[1:]
	n.inFlight, n.current = true, e
	return e
}

// deliver posts e until it succeeds, fails for good, RetryFor passes or ctx
// ends (then it goes back to the head of the queue, for Run's drain).
func (n *Notifier) deliver(ctx context.Context, e *event.Event) {
	giveUpAt := time.Now().Add(n.o.RetryFor)
	backoff := n.o.MinBackoff
	for {
		// An attempt under way runs to its own timeout even when dbprobe
		// stops: cut short, a POST the receiver already accepted would be
		// sent again by the drain. Stopping is checked between attempts.
		wait, err := n.post(context.WithoutCancel(ctx), e)
		if err == nil {
			n.delivered()
			return
		}
		var final *finalError
		if errors.As(err, &final) {
			n.giveUp(e, err.Error())
			return
		}
		wait = max(wait, backoff)
		if time.Now().Add(wait).After(giveUpAt) {
			n.giveUp(e, fmt.Sprintf("still failing after %v: %v", n.o.RetryFor, err))
			return
		}
		n.log.Debug("webhook delivery failed; retrying", "action", e.Event.Action, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			n.requeue(e)
			return
		case <-t.C:
		}
		backoff = min(2*backoff, n.o.MaxBackoff)
	}
}

func (n *Notifier) requeue(e *event.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue = append([]*event.Event{e}, n.queue...)
	n.inFlight = false
}

func (n *Notifier) delivered() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropLogged, n.failing = false, false
}

func (n *Notifier) giveUp(e *event.Event, why string) {
	n.mu.Lock()
	n.dropped++
	n.mu.Unlock()
	n.log.Warn("webhook notification dropped", "action", e.Event.Action, "id", e.Event.ID, "reason", why)
}

// finalError is a failure that retrying will not change.
type finalError struct{ msg string }

func (f *finalError) Error() string { return f.msg + " (not retried)" }

// post makes one attempt. A retryable failure may come with how long the
// receiver asked to wait (Retry-After, in seconds).
func (n *Notifier) post(ctx context.Context, e *event.Event) (time.Duration, error) {
	body, err := json.Marshal(Body(e))
	if err != nil {
		return 0, &finalError{"encode: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.o.URL, bytes.NewReader(body))
	if err != nil {
		// The error would quote the URL.
		return 0, &finalError{"bad webhook URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	if n.o.UserAgent != "" {
		req.Header.Set("User-Agent", n.o.UserAgent)
	}
	for k, v := range n.o.Headers {
		req.Header.Set(k, v)
	}
	resp, err := n.o.Client.Do(req)
	if err != nil {
		n.failed()
		// *url.Error quotes the URL, which may be a token: keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return 0, nil
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		n.failed()
		wait := time.Duration(0)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = min(time.Duration(s)*time.Second, n.o.MaxBackoff)
		}
		return wait, fmt.Errorf("HTTP %d", c)
	default:
		n.failed()
		return 0, &finalError{fmt.Sprintf("HTTP %d", c)}
	}
}

func (n *Notifier) failed() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failures++
	n.failing = true
}

// Payload is the JSON body of a notification: "text" for Slack-compatible
// receivers, the rest for programs. Its fields are a stable contract
// (docs/http.md).
type Payload struct {
	Text     string    `json:"text"`
	Action   string    `json:"action"`
	At       time.Time `json:"at"`
	Observer string    `json:"observer"`
	Target   string    `json:"target"`
	Mode     string    `json:"mode"`
	RunID    string    `json:"run_id"`
	// ID is the finding's event ID, the same in the journal and
	// Elasticsearch: a receiver can use it to drop a duplicate (a POST
	// whose answer was lost is sent again).
	ID    string       `json:"id"`
	Event *event.Event `json:"event"`
}

// slackEscape escapes what Slack's mrkdwn reads as control sequences: the
// message carries strings a server controls (hostname, version comment,
// error messages), and "<!channel>" in them must not ping a channel.
// https://api.slack.com/reference/surfaces/formatting#escaping
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Body builds the payload posted for e.
func Body(e *event.Event) Payload {
	text := e.Message
	if text == "" {
		text = fmt.Sprintf("%s on %s", e.Event.Action, e.Key())
	}
	return Payload{
		Text:     "dbprobe: " + slackEscape.Replace(text),
		Action:   e.Event.Action,
		At:       e.Timestamp,
		Observer: e.Observer.Name,
		Target:   e.DBProbe.Target,
		Mode:     e.DBProbe.Mode,
		RunID:    e.DBProbe.RunID,
		ID:       e.Event.ID,
		Event:    e,
	}
}
