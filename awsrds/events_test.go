package awsrds

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/dbprobe/dbprobe/awsrds/rdsfake"
	"github.com/dbprobe/dbprobe/event"
)

func testClient(url string) RDSAPI {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, "")}
	return NewRDSClient(cfg, url)
}

// collect gathers emitted events.
type collect struct {
	mu  sync.Mutex
	evs []*event.Event
}

func (c *collect) emit(e *event.Event) { c.mu.Lock(); c.evs = append(c.evs, e); c.mu.Unlock() }
func (c *collect) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.evs {
		out = append(out, e.DBProbe.AWS.SourceID+": "+e.DBProbe.AWS.Message)
	}
	return out
}

func TestEventPollerDescribeEvents(t *testing.T) {
	fake := rdsfake.New(t, testKey)
	fake.Add("db-cluster", "orders", "2026-03-14T15:00:01.250Z", "Started cross AZ failover to DB instance: orders-2", "failover")
	clk := &clock{t: t0}
	p := &EventPoller{Target: "orders", Sources: []EventSource{{SourceCluster, "orders"}}, Client: testClient(fake.URL),
		RunID: "run1", Observer: event.Observer{Name: "obs1"}, Now: clk.now}
	var got collect
	ctx := context.Background()
	if err := p.Poll(ctx, got.emit); err != nil {
		t.Fatal(err)
	}
	fake.Add("db-cluster", "orders", "2026-03-14T15:00:09.500Z", "Completed failover to DB instance: orders-2", "failover")
	clk.add(10 * time.Second)
	if err := p.Poll(ctx, got.emit); err != nil {
		t.Fatal(err)
	}
	want := []string{"orders: Started cross AZ failover to DB instance: orders-2", "orders: Completed failover to DB instance: orders-2"}
	if fmt.Sprint(got.messages()) != fmt.Sprint(want) {
		t.Fatalf("emitted %q; want each event once: %q", got.messages(), want)
	}
	e := got.evs[0]
	if e.Event.Action != event.ActionAWSEvent || e.DBProbe.Target != "orders" || e.DBProbe.RunID != "run1" ||
		!e.Timestamp.Equal(time.Date(2026, 3, 14, 15, 0, 1, 250e6, time.UTC)) ||
		e.DBProbe.AWS.SourceType != "db-cluster" || fmt.Sprint(e.DBProbe.AWS.Categories) != "[failover]" ||
		e.DBProbe.AWS.SourceARN != "arn:aws:rds:eu-west-1:123456789012:cluster:orders" {
		t.Errorf("event %+v %+v", e.Event, e.DBProbe.AWS)
	}
	if got.evs[0].Event.ID == got.evs[1].Event.ID {
		t.Error("two AWS events share an id")
	}
	// Asked from 15 minutes before the start, then again with an overlap.
	for i, r := range fake.Requests() {
		if r.Get("SourceType") != "db-cluster" || r.Get("SourceIdentifier") != "orders" || r.Get("StartTime") != "2026-03-14T14:54:26Z" {
			t.Errorf("request %d: %v", i, r)
		}
	}
}

func TestEventPollerBlueGreen(t *testing.T) {
	fake := rdsfake.New(t, testKey)
	fake.SetBlueGreenStatus("AVAILABLE")
	clk := &clock{t: t0}
	p := &EventPoller{Target: "orders", Sources: []EventSource{{SourceBlueGreen, "bgd-abc123"}}, Client: testClient(fake.URL), Now: clk.now}
	var got collect
	ctx := context.Background()
	for _, status := range []string{"AVAILABLE", "AVAILABLE", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_COMPLETED"} {
		fake.SetBlueGreenStatus(status)
		if status == "SWITCHOVER_COMPLETED" {
			fake.Add("blue-green-deployment", "bgd-abc123", "2026-03-14T15:09:40Z", "Switchover completed on blue/green deployment.")
		}
		if err := p.Poll(ctx, got.emit); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Second)
	}
	want := []string{
		"bgd-abc123: Blue/Green deployment orders-upgrade is AVAILABLE; orders -> orders-green-abc123 AVAILABLE",
		"bgd-abc123: Blue/Green deployment orders-upgrade is SWITCHOVER_IN_PROGRESS (was AVAILABLE); orders -> orders-green-abc123 SWITCHOVER_IN_PROGRESS",
		"bgd-abc123: Switchover completed on blue/green deployment.",
		"bgd-abc123: Blue/Green deployment orders-upgrade is SWITCHOVER_COMPLETED (was SWITCHOVER_IN_PROGRESS); orders -> orders-green-abc123 SWITCHOVER_COMPLETED",
	}
	if strings.Join(got.messages(), "\n") != strings.Join(want, "\n") {
		t.Errorf("emitted\n%s\nwant\n%s", strings.Join(got.messages(), "\n"), strings.Join(want, "\n"))
	}
	if s := got.evs[1].DBProbe.AWS.Status; s != "SWITCHOVER_IN_PROGRESS" {
		t.Errorf("status field %q", s)
	}
}

// TestEventPollerFailures checks that a failing API is logged once per
// streak, counted on every failed poll, backed off, and recovered from.
func TestEventPollerFailures(t *testing.T) {
	fake := rdsfake.New(t, testKey)
	fake.SetFailing(true)
	var logBuf bytes.Buffer
	var mu sync.Mutex
	failed := make(chan struct{}, 100)
	p := &EventPoller{Target: "orders", Sources: []EventSource{{SourceCluster, "orders"}}, Client: testClient(fake.URL),
		Interval: time.Millisecond, OnFailure: func() { failed <- struct{}{} },
		Logger: slog.New(slog.NewTextHandler(&lockedBuffer{mu: &mu, b: &logBuf}, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	emitted := make(chan *event.Event, 10)
	go func() { defer close(done); p.Run(ctx, func(e *event.Event) { emitted <- e }) }()
	for i := 0; i < 3; i++ {
		<-failed
	}
	fake.SetFailing(false)
	fake.Add("db-cluster", "orders", t0.Format(time.RFC3339), "DB cluster restarted")
	select {
	case e := <-emitted:
		if e.DBProbe.AWS.Message != "DB cluster restarted" {
			t.Errorf("emitted %q", e.DBProbe.AWS.Message)
		}
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute of the API recovering")
	}
	cancel()
	<-done
	mu.Lock()
	logs := logBuf.String()
	mu.Unlock()
	if n := strings.Count(logs, "polling AWS events failed"); n != 1 {
		t.Errorf("failure logged %d times, want once per streak:\n%s", n, logs)
	}
	if !strings.Contains(logs, "Throttling") || !strings.Contains(logs, "polling AWS events works again") {
		t.Errorf("log does not say why it failed and that it recovered:\n%s", logs)
	}
	if strings.Contains(logs, testSecret) {
		t.Error("log contains the secret key")
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{0: 10 * time.Second, 1: 20 * time.Second, 2: 40 * time.Second, 5: 5 * time.Minute, 50: 5 * time.Minute} {
		if got := backoff(10*time.Second, failures); got != want {
			t.Errorf("backoff after %d failures = %v, want %v", failures, got, want)
		}
	}
}

// deniedAPI refuses every request, naming the source asked about.
type deniedAPI struct{}

func (deniedAPI) DescribeEvents(_ context.Context, in *rds.DescribeEventsInput, _ ...func(*rds.Options)) (*rds.DescribeEventsOutput, error) {
	return nil, fmt.Errorf("not authorized for %s", aws.ToString(in.SourceIdentifier))
}

func (deniedAPI) DescribeBlueGreenDeployments(_ context.Context, in *rds.DescribeBlueGreenDeploymentsInput, _ ...func(*rds.Options)) (*rds.DescribeBlueGreenDeploymentsOutput, error) {
	return nil, fmt.Errorf("not authorized for %s", aws.ToString(in.BlueGreenDeploymentIdentifier))
}

// A poll that fails for several sources says why for each of them: the
// operator fixes every wrong identifier or permission in one go.
func TestEventPollerReportsEverySource(t *testing.T) {
	p := &EventPoller{Target: "orders", Client: deniedAPI{},
		Sources: []EventSource{{SourceCluster, "orders"}, {SourceInstance, "orders-1"}}}
	err := p.Poll(context.Background(), func(*event.Event) {})
	for _, want := range []string{"db-cluster orders: not authorized for orders", "db-instance orders-1: not authorized for orders-1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Poll error %v; want it to contain %q", err, want)
		}
	}
}

// sourceFailing answers from AWS's fake, as AWS does only with events
// dated at or after StartTime, and fails for one source while told to.
type sourceFailing struct {
	RDSAPI
	mu   sync.Mutex
	fail string
}

func (s *sourceFailing) set(id string) { s.mu.Lock(); s.fail = id; s.mu.Unlock() }

func (s *sourceFailing) DescribeEvents(ctx context.Context, in *rds.DescribeEventsInput, o ...func(*rds.Options)) (*rds.DescribeEventsOutput, error) {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if aws.ToString(in.SourceIdentifier) == fail {
		return nil, fmt.Errorf("throttled")
	}
	out, err := s.RDSAPI.DescribeEvents(ctx, in, o...)
	if err != nil {
		return nil, err
	}
	var kept []types.Event
	for _, e := range out.Events {
		if !aws.ToTime(e.Date).Before(aws.ToTime(in.StartTime)) {
			kept = append(kept, e)
		}
	}
	out.Events = kept
	return out, nil
}

// A source that fails for a while is asked again from its own last
// success, and the events it had already journaled are not journaled
// twice, whatever the other sources' polls forgot meanwhile.
func TestEventPollerSourceRecoversWithoutDuplicates(t *testing.T) {
	fake := rdsfake.New(t, testKey)
	fake.Add("db-instance", "orders-1", t0.Add(-time.Minute).Format(time.RFC3339), "DB instance restarted")
	api := &sourceFailing{RDSAPI: testClient(fake.URL)}
	clk := &clock{t: t0}
	p := &EventPoller{Target: "orders", Client: api, Now: clk.now,
		Sources: []EventSource{{SourceCluster, "orders"}, {SourceInstance, "orders-1"}}}
	var got collect
	ctx := context.Background()
	if err := p.Poll(ctx, got.emit); err != nil {
		t.Fatal(err)
	}
	api.set("orders-1")
	for range 3 {
		clk.add(10 * time.Minute)
		_ = p.Poll(ctx, got.emit) // orders-1 fails; orders succeeds
	}
	api.set("")
	clk.add(10 * time.Second)
	if err := p.Poll(ctx, got.emit); err != nil {
		t.Fatal(err)
	}
	if want := []string{"orders-1: DB instance restarted"}; fmt.Sprint(got.messages()) != fmt.Sprint(want) {
		t.Errorf("emitted %q; want %q, once", got.messages(), want)
	}
}
