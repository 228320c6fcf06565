package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// transition builds finding number i with the given action.
func transition(i int, action string) *event.Event {
	return &event.Event{
		Timestamp: time.Date(2026, 3, 1, 12, 0, i, 0, time.UTC),
		Message:   fmt.Sprintf("finding %d", i),
		Event:     event.Meta{ID: fmt.Sprintf("run/obs/db/fresh/%s/%d", action, i), Kind: event.KindState, Action: action},
		Observer:  event.Observer{Name: "obs"},
		DBProbe:   event.DBProbe{RunID: "run", Target: "db", Mode: "fresh", Finding: &event.Finding{}},
	}
}

// receiver records the payloads it accepts; fail decides, per payload and
// attempt, the status to answer (0: 200).
type receiver struct {
	mu       sync.Mutex
	got      []Payload
	attempts map[string]int
	headers  []http.Header
	fail     func(p Payload, attempt int) int
}

func newReceiver(t *testing.T, fail func(Payload, int) int) (*receiver, *httptest.Server) {
	t.Helper()
	r := &receiver{attempts: map[string]int{}, fail: fail}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p Payload
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			t.Errorf("receiver: bad JSON: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.attempts[p.ID]++
		n := r.attempts[p.ID]
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		code := 0
		if r.fail != nil {
			code = r.fail(p, n) // may block: outside the lock
		}
		if code == 0 {
			r.mu.Lock()
			r.got = append(r.got, p)
			r.mu.Unlock()
		}
		if code != 0 {
			w.WriteHeader(code)
		}
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.got {
		out = append(out, p.ID)
	}
	return out
}

// run runs n until the test ends.
func run(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// await polls cond until it holds or 10 s pass.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastOptions(url string) Options {
	return Options{Name: "test", URL: url, Timeout: 2 * time.Second, RetryFor: time.Minute, QueueSize: 100,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

// TestEveryTransitionOnceInOrder: transient 500s and 429s delay a
// notification but never duplicate, lose or reorder any.
func TestEveryTransitionOnceInOrder(t *testing.T) {
	r, srv := newReceiver(t, func(p Payload, attempt int) int {
		switch {
		case strings.HasSuffix(p.ID, "/1") && attempt <= 3:
			return http.StatusInternalServerError
		case strings.HasSuffix(p.ID, "/4") && attempt == 1:
			return http.StatusTooManyRequests
		case strings.HasSuffix(p.ID, "/6") && attempt <= 2:
			return http.StatusBadGateway
		}
		return 0
	})
	n := New(fastOptions(srv.URL))
	run(t, n)
	actions := []string{
		event.ActionReadOnlyOn, event.ActionReadWindowOpened, event.ActionWriteWindowOpened,
		event.ActionCutover, event.ActionDNSChange, event.ActionReadWindowClosed,
		event.ActionWriteWindowClosed, event.ActionReadOnlyOff, event.ActionStaleStarted,
		event.ActionStaleEnded, event.ActionBlueGreenPhase,
	}
	var want []string
	for i, a := range actions {
		e := transition(i, a)
		want = append(want, e.Event.ID)
		n.Observe(e)
		// Probes and non-transition findings are not posted.
		n.Observe(&event.Event{Event: event.Meta{Kind: event.KindEvent, Action: event.ActionProbe, ID: "probe"}})
	}
	await(t, "every transition delivered", func() bool { return len(r.ids()) >= len(want) })
	if got := r.ids(); !slices.Equal(got, want) {
		t.Errorf("received %q, want %q", got, want)
	}
	st := n.Stats()
	if st.Failures != 6 || st.Dropped != 0 {
		t.Errorf("Stats() failures, dropped = %d, %d, want 6, 0", st.Failures, st.Dropped)
	}
	await(t, "empty backlog", func() bool { return n.Stats().Backlog == 0 })
}

func TestPayload(t *testing.T) {
	r, srv := newReceiver(t, nil)
	o := fastOptions(srv.URL)
	o.Headers = map[string]string{"Authorization": "Bearer hook-secret-123"}
	o.UserAgent = "dbprobe/test"
	n := New(o)
	run(t, n)
	e := transition(7, event.ActionCutover)
	e.Message = "db: cutover from #1 to #2"
	n.Observe(e)
	await(t, "delivery", func() bool { return len(r.ids()) == 1 })
	r.mu.Lock()
	p, h := r.got[0], r.headers[0]
	r.mu.Unlock()
	want := Payload{Text: "dbprobe: db: cutover from #1 to #2", Action: "cutover", At: e.Timestamp,
		Observer: "obs", Target: "db", Mode: "fresh", RunID: "run", ID: e.Event.ID}
	p.Event = nil
	if p != want {
		t.Errorf("payload = %+v, want %+v", p, want)
	}
	if got := h.Get("Authorization"); got != "Bearer hook-secret-123" {
		t.Errorf("Authorization header = %q, want the configured one", got)
	}
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := h.Get("User-Agent"); got != "dbprobe/test" {
		t.Errorf("User-Agent = %q, want dbprobe/test", got)
	}
}

func TestFinalAnswersAndRetryLimit(t *testing.T) {
	r, srv := newReceiver(t, func(p Payload, attempt int) int {
		switch {
		case strings.HasSuffix(p.ID, "/0"):
			return http.StatusBadRequest // final: not retried
		case strings.HasSuffix(p.ID, "/1"):
			return http.StatusMovedPermanently // final: redirects are not followed
		case strings.HasSuffix(p.ID, "/2"):
			return http.StatusServiceUnavailable // retried until RetryFor
		}
		return 0
	})
	o := fastOptions(srv.URL)
	o.RetryFor = 50 * time.Millisecond
	n := New(o)
	run(t, n)
	for i := range 4 {
		n.Observe(transition(i, event.ActionCutover))
	}
	await(t, "the last notification", func() bool { return len(r.ids()) == 1 })
	r.mu.Lock()
	a0, a1, a2 := r.attempts["run/obs/db/fresh/cutover/0"], r.attempts["run/obs/db/fresh/cutover/1"], r.attempts["run/obs/db/fresh/cutover/2"]
	r.mu.Unlock()
	if a0 != 1 || a1 != 1 {
		t.Errorf("attempts on 400, 301 = %d, %d, want 1, 1", a0, a1)
	}
	if a2 < 2 {
		t.Errorf("attempts on 503 = %d, want retries", a2)
	}
	if st := n.Stats(); st.Dropped != 3 {
		t.Errorf("Stats().Dropped = %d, want 3", st.Dropped)
	}
}

// TestQueueFullDropsOldest: with the receiver stuck, Observe keeps returning
// and the newest notifications are the ones kept.
func TestQueueFullDropsOldest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r, srv := newReceiver(t, func(p Payload, attempt int) int {
		if strings.HasSuffix(p.ID, "/0") {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
		return 0
	})
	o := fastOptions(srv.URL)
	o.QueueSize = 3
	n := New(o)
	run(t, n)
	n.Observe(transition(0, event.ActionCutover))
	// Wait for #0 to be in flight (its handler blocks), then overfill.
	<-entered
	for i := 1; i <= 5; i++ {
		n.Observe(transition(i, event.ActionCutover))
	}
	if st := n.Stats(); st.Dropped != 2 || st.Backlog != 4 {
		t.Errorf("Stats() with the queue overfilled = %+v, want 2 dropped, backlog 4", st)
	}
	close(release)
	await(t, "deliveries", func() bool { return len(r.ids()) == 4 })
	want := []string{"run/obs/db/fresh/cutover/0", "run/obs/db/fresh/cutover/3", "run/obs/db/fresh/cutover/4", "run/obs/db/fresh/cutover/5"}
	if got := r.ids(); !slices.Equal(got, want) {
		t.Errorf("received %q, want %q", got, want)
	}
}

// TestStopDrains: notifications queued when Run's context ends get one
// attempt each.
func TestStopDrains(t *testing.T) {
	r, srv := newReceiver(t, nil)
	n := New(fastOptions(srv.URL))
	for i := range 3 {
		n.Observe(transition(i, event.ActionReadOnlyOn))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Run(ctx)
	if got := len(r.ids()); got != 3 {
		t.Errorf("received %d notifications after a stop, want 3", got)
	}
	if st := n.Stats(); st.Backlog != 0 || st.Dropped != 0 {
		t.Errorf("Stats() after drain = %+v, want empty", st)
	}
}

// TestSecretsNotLogged: a URL with a token in its path and a secret header
// never reach the log, whatever fails.
func TestSecretsNotLogged(t *testing.T) {
	// A port nothing listens on: every POST fails with a dial error, which
	// net/http reports quoting the URL.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logBuf bytes.Buffer
	o := fastOptions("http://" + addr + "/services/T0/B0/url-token-SECRET")
	o.Headers = map[string]string{"X-Token": "header-SECRET"}
	o.RetryFor = 20 * time.Millisecond
	o.Logger = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	n.Observe(transition(0, event.ActionCutover))
	await(t, "the notification dropped", func() bool { return n.Stats().Dropped == 1 })
	// Run has returned: the log is complete and no longer written.
	cancel()
	<-done
	out := logBuf.String()
	if strings.Contains(out, "SECRET") {
		t.Errorf("log leaks a secret:\n%s", out)
	}
	if !strings.Contains(out, "webhook notification dropped") || !strings.Contains(out, "connection refused") {
		t.Errorf("log lacks the drop and its cause:\n%s", out)
	}
}

// TestTextEscapesSlackControls: the message carries strings a server
// controls (its hostname, version comment, error messages); in Slack's
// "text", "<!channel>" would ping everyone and "<url|label>" would disguise
// a link. "&", "<" and ">" are escaped as Slack asks; the event itself,
// for programs, keeps the raw string.
func TestTextEscapesSlackControls(t *testing.T) {
	r, srv := newReceiver(t, nil)
	n := New(fastOptions(srv.URL))
	run(t, n)
	e := transition(1, event.ActionCutover)
	raw := "db: cutover from <!channel> & <https://evil.example|docs> to x>y"
	e.Message = raw
	n.Observe(e)
	await(t, "delivery", func() bool { return len(r.ids()) == 1 })
	r.mu.Lock()
	p := r.got[0]
	r.mu.Unlock()
	want := "dbprobe: db: cutover from &lt;!channel&gt; &amp; &lt;https://evil.example|docs&gt; to x&gt;y"
	if p.Text != want {
		t.Errorf("text = %q\nwant %q", p.Text, want)
	}
	if p.Event == nil || p.Event.Message != raw {
		t.Errorf("event.message = %v, want the raw message", p.Event)
	}
}
