package web

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"
)

// DefaultRenderEvery is Options.RenderEvery's default: the status page
// reloads every statusRefresh seconds, Prometheus-style pollers every few
// seconds; a second-old report serves them all.
const DefaultRenderEvery = time.Second

// renderTimeout bounds one shared render: no client waits on a stuck one
// forever, and it does not depend on any one client staying connected.
const renderTimeout = time.Minute

// renderer renders one page at most once per `every` (or per as long as
// its last render took, if longer) and shares the result: clients that ask while a render runs wait for it, clients that
// ask within `every` of the last render get its bytes. Renders of all
// pages take turns on one slot, so at most one core renders while probing
// runs on the others. A failed render is shared with its waiters but not
// kept.
type renderer struct {
	fn    func(context.Context, io.Writer) error
	every time.Duration
	now   func() time.Time
	slot  chan struct{} // shared by every page of one Handler

	mu     sync.Mutex
	body   []byte
	at     time.Time     // when body's render ended
	took   time.Duration // how long it took
	flight *flight
}

type flight struct {
	done chan struct{}
	body []byte
	err  error
}

func newRenderer(o Options, slot chan struct{}, fn func(context.Context, io.Writer) error) *renderer {
	r := &renderer{fn: fn, every: o.RenderEvery, now: o.Now, slot: slot}
	if r.every <= 0 {
		r.every = DefaultRenderEvery
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// get returns the page, rendering it only if the last render is older than
// r.every and none is under way. ctx is the client's: it ends the wait,
// never the render others wait for.
func (r *renderer) get(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	// A render that took longer than every is not started again before as
	// long as it took: readers keep at most half a core rendering.
	if r.body != nil && r.now().Sub(r.at) < max(r.every, r.took) {
		b := r.body
		r.mu.Unlock()
		return b, nil
	}
	f := r.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		r.flight = f
		go r.render(f)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.body, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// render runs one render for f's waiters. Its goroutine ends with the
// render, bounded by renderTimeout.
func (r *renderer) render(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), renderTimeout)
	defer cancel()
	select {
	case r.slot <- struct{}{}:
		defer func() { <-r.slot }()
		var buf bytes.Buffer
		t0 := r.now()
		f.err = r.fn(ctx, &buf)
		f.body = buf.Bytes()
		took := r.now().Sub(t0)
		r.mu.Lock()
		r.took = took
		r.mu.Unlock()
	case <-ctx.Done():
		f.err = ctx.Err()
	}
	r.mu.Lock()
	r.flight = nil
	if f.err == nil {
		r.body, r.at = f.body, r.now()
	}
	r.mu.Unlock()
	close(f.done)
}
