package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/report"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestReportRendersOncePerInterval: sixteen clients hammering the report
// pages over real HTTP get one render per page and interval between them,
// each the same body; once the interval has passed, the next request
// renders anew. A report of many streams takes tens of milliseconds of CPU
// to render: one per client made probing wait (schedule lag p99 from 1 to
// 153 ms with 16 clients).
func TestReportRendersOncePerInterval(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var renders [3]atomic.Int64
	renderer := func(i int) func(context.Context, io.Writer) error {
		return func(_ context.Context, w io.Writer) error {
			n := renders[i].Add(1)
			_, err := fmt.Fprintf(w, "render %d", n)
			return err
		}
	}
	base := start(t, Options{
		Gatherer:    prometheus.NewRegistry(),
		Report:      renderer(0),
		ReportHTML:  renderer(1),
		Live:        func(ctx context.Context, w io.Writer, _ report.Live) error { return renderer(2)(ctx, w) },
		RenderEvery: time.Second,
		Now:         clock.Now,
	})
	paths := []string{"/api/v1/report", "/report", "/"}
	const clients, requests = 16, 5
	round := func(want string) {
		t.Helper()
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Go(func() {
				for r := 0; r < requests; r++ {
					for _, p := range paths {
						resp, err := http.Get(base + p)
						if err != nil {
							t.Errorf("GET %s: %v", p, err)
							return
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK || string(body) != want {
							t.Errorf("GET %s = %d %q, want 200 %q", p, resp.StatusCode, body, want)
						}
					}
				}
			})
		}
		wg.Wait()
	}
	round("render 1")
	for i, p := range paths {
		if got := renders[i].Load(); got != 1 {
			t.Errorf("%s rendered %d times for %d requests within one interval, want 1", p, got, clients*requests)
		}
	}
	clock.Add(time.Second)
	round("render 2")
	for i, p := range paths {
		if got := renders[i].Load(); got != 2 {
			t.Errorf("%s rendered %d times after one more interval, want 2", p, got)
		}
	}
}

// TestSlowRenderWaitsAsLongAsItTook: a render that takes longer than
// RenderEvery (the JSON report of 10,000 streams takes seconds) is not
// started again before as long as it took has passed: readers can keep at
// most half a core rendering, whatever they do.
func TestSlowRenderWaitsAsLongAsItTook(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var renders atomic.Int64
	base := start(t, Options{
		Gatherer: prometheus.NewRegistry(),
		Report: func(_ context.Context, w io.Writer) error {
			clock.Add(3 * time.Second) // the render takes 3 s
			_, err := fmt.Fprintf(w, "render %d", renders.Add(1))
			return err
		},
		RenderEvery: time.Second,
		Now:         clock.Now,
	})
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{{0, "render 1"}, {1500 * time.Millisecond, "render 1"}, {time.Second, "render 1"}, {time.Second, "render 2"}} {
		clock.Add(step.advance)
		if _, _, body := get(t, http.DefaultClient, base+"/api/v1/report"); body != step.want {
			t.Errorf("after %v more: body %q, want %q", step.advance, body, step.want)
		}
	}
}
