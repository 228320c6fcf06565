package awsrds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/dbprobe/dbprobe/event"
)

// RDS source types dbprobe polls events of.
const (
	SourceInstance  = string(types.SourceTypeDbInstance)
	SourceCluster   = string(types.SourceTypeDbCluster)
	SourceBlueGreen = string(types.SourceTypeBlueGreenDeployment)
)

// Poll cadence. RDS allows an account about 12 API requests a second,
// shared with every other caller in the region, so dbprobe asks rarely and
// backs off when asking fails.
const (
	DefaultEventInterval = 10 * time.Second
	maxEventBackoff      = 5 * time.Minute
	// eventLookback is how far before dbprobe's start events are fetched,
	// so an operation started just before dbprobe shows.
	eventLookback = 15 * time.Minute
	// eventOverlap is how far back every poll asks again: AWS makes some
	// events visible only after their date.
	eventOverlap = 15 * time.Minute
	pollTimeout  = 30 * time.Second
)

// NewRDSClient returns an RDS API client for cfg. It makes one attempt per
// call: the poller has its own backoff and counts every failure. endpoint,
// when set, replaces AWS's (a VPC endpoint, or a test's fake).
func NewRDSClient(cfg aws.Config, endpoint string) *rds.Client {
	return rds.NewFromConfig(cfg, func(o *rds.Options) {
		o.RetryMaxAttempts = 1
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// RDSAPI is the part of the RDS API the poller calls.
type RDSAPI interface {
	DescribeEvents(context.Context, *rds.DescribeEventsInput, ...func(*rds.Options)) (*rds.DescribeEventsOutput, error)
	DescribeBlueGreenDeployments(context.Context, *rds.DescribeBlueGreenDeploymentsInput, ...func(*rds.Options)) (*rds.DescribeBlueGreenDeploymentsOutput, error)
}

// EventSource is one RDS resource whose events are polled.
type EventSource struct {
	Type string // SourceInstance, SourceCluster or SourceBlueGreen
	ID   string // its identifier, e.g. "orders" or "bgd-abc123"
}

// EventPoller polls AWS's own account of what happened to a target's
// database (failovers, reboots, Blue/Green switchovers) and emits each new
// item as an event with action aws_event. It never touches probing: its
// failures are logged once per streak and counted through OnFailure.
type EventPoller struct {
	Target   string
	Sources  []EventSource
	Client   RDSAPI
	Interval time.Duration // 0: DefaultEventInterval
	RunID    string
	Observer event.Observer
	Labels   map[string]string
	Logger   *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnFailure is called for every poll that failed.
	OnFailure func()

	start  time.Time
	lastOK map[EventSource]time.Time
	// seen holds, per source, the events journaled (key -> date) that a
	// poll of that source may return again. Per source: each source asks
	// from its own last success, so only it knows what it may get again.
	seen     map[EventSource]map[string]time.Time
	bgStatus map[string]string // deployment -> last status emitted
}

// Run polls until ctx is done.
func (p *EventPoller) Run(ctx context.Context, emit func(*event.Event)) {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Interval <= 0 {
		p.Interval = DefaultEventInterval
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	failures := 0
	for {
		err := p.Poll(ctx, emit)
		if err == nil && failures > 0 {
			p.Logger.Info("polling AWS events works again", "target", p.Target, "failed_polls", failures)
			failures = 0
		}
		if ctx.Err() != nil {
			return
		}
		wait := p.Interval
		if err != nil {
			failures++
			if p.OnFailure != nil {
				p.OnFailure()
			}
			if failures == 1 {
				p.Logger.Warn("polling AWS events failed; probing goes on, polling retries with backoff", "target", p.Target, "err", err)
			}
			wait = backoff(p.Interval, failures)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff doubles the interval per consecutive failure, up to
// maxEventBackoff.
func backoff(interval time.Duration, failures int) time.Duration {
	d := interval
	for i := 0; i < failures && d < maxEventBackoff; i++ {
		d *= 2
	}
	return min(d, maxEventBackoff)
}

// Poll asks once for every source and emits what is new; the first call
// also reaches back eventLookback before it. Its error says why for every
// source that failed. Run calls it in a loop.
func (p *EventPoller) Poll(ctx context.Context, emit func(*event.Event)) error {
	if p.seen == nil {
		p.start, p.lastOK, p.seen, p.bgStatus = p.now(), map[EventSource]time.Time{}, map[EventSource]map[string]time.Time{}, map[string]string{}
	}
	var errs []error
	for _, src := range p.Sources {
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		err := p.pollEvents(pctx, src, emit)
		if err == nil && src.Type == SourceBlueGreen {
			err = p.pollDeployment(pctx, src, emit)
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", src.Type, src.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (p *EventPoller) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *EventPoller) pollEvents(ctx context.Context, src EventSource, emit func(*event.Event)) error {
	now := p.now()
	from := p.start.Add(-eventLookback)
	if ok, polled := p.lastOK[src]; polled && ok.Add(-eventOverlap).After(from) {
		from = ok.Add(-eventOverlap)
	}
	in := &rds.DescribeEventsInput{
		SourceType:       types.SourceType(src.Type),
		SourceIdentifier: aws.String(src.ID),
		StartTime:        aws.Time(from),
		MaxRecords:       aws.Int32(100),
	}
	var got []types.Event
	pages := rds.NewDescribeEventsPaginator(p.Client, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		got = append(got, out.Events...)
	}
	p.lastOK[src] = now
	seen := p.seen[src]
	if seen == nil {
		seen = map[string]time.Time{}
		p.seen[src] = seen
	}
	for k, d := range seen {
		if d.Before(from.Add(-time.Minute)) {
			delete(seen, k)
		}
	}
	for _, e := range got {
		ae := &event.AWSEvent{
			SourceType: string(e.SourceType), SourceID: aws.ToString(e.SourceIdentifier), SourceARN: aws.ToString(e.SourceArn),
			Message: aws.ToString(e.Message), Categories: e.EventCategories, Date: aws.ToTime(e.Date).UTC(),
		}
		if ae.SourceType == "" {
			ae.SourceType = src.Type
		}
		if ae.SourceID == "" {
			ae.SourceID = src.ID
		}
		key := ae.SourceType + "\x00" + ae.SourceID + "\x00" + ae.Date.Format(time.RFC3339Nano) + "\x00" + ae.Message
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = ae.Date
		emit(p.event(key, ae))
	}
	return nil
}

// pollDeployment emits the deployment's status each time it changes: AWS
// records no event for every step, and the status is what its console shows.
func (p *EventPoller) pollDeployment(ctx context.Context, src EventSource, emit func(*event.Event)) error {
	out, err := p.Client.DescribeBlueGreenDeployments(ctx, &rds.DescribeBlueGreenDeploymentsInput{BlueGreenDeploymentIdentifier: aws.String(src.ID)})
	if err != nil {
		return err
	}
	if len(out.BlueGreenDeployments) == 0 {
		return fmt.Errorf("no such Blue/Green deployment")
	}
	d := out.BlueGreenDeployments[0]
	status := aws.ToString(d.Status)
	prev, seen := p.bgStatus[src.ID]
	if seen && prev == status {
		return nil
	}
	p.bgStatus[src.ID] = status
	var b strings.Builder
	fmt.Fprintf(&b, "Blue/Green deployment %s is %s", aws.ToString(d.BlueGreenDeploymentName), status)
	if seen {
		fmt.Fprintf(&b, " (was %s)", prev)
	}
	if det := aws.ToString(d.StatusDetails); det != "" {
		fmt.Fprintf(&b, ": %s", det)
	}
	for _, sd := range d.SwitchoverDetails {
		fmt.Fprintf(&b, "; %s -> %s %s", lastPart(aws.ToString(sd.SourceMember)), lastPart(aws.ToString(sd.TargetMember)), aws.ToString(sd.Status))
	}
	now := p.now().UTC()
	ae := &event.AWSEvent{SourceType: SourceBlueGreen, SourceID: src.ID, Message: b.String(), Date: now, Status: status}
	emit(p.event(SourceBlueGreen+"\x00"+src.ID+"\x00status\x00"+now.Format(time.RFC3339Nano), ae))
	return nil
}

// lastPart shortens an ARN to its resource name.
func lastPart(arn string) string {
	if i := strings.LastIndexByte(arn, ':'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func (p *EventPoller) event(key string, ae *event.AWSEvent) *event.Event {
	sum := sha256.Sum256([]byte(key))
	return &event.Event{
		Timestamp: ae.Date,
		Message:   fmt.Sprintf("%s: AWS %s %s at %s: %s", p.Target, ae.SourceType, ae.SourceID, ae.Date.Format("15:04:05.000"), ae.Message),
		Event: event.Meta{
			ID:       fmt.Sprintf("%s/%s/%s/aws/%s", p.RunID, p.Observer.Name, p.Target, hex.EncodeToString(sum[:8])),
			Kind:     event.KindEvent,
			Category: []string{"database"},
			Type:     []string{"info"},
			Dataset:  event.DatasetProbe,
			Action:   event.ActionAWSEvent,
			Start:    ae.Date,
		},
		Observer: p.Observer,
		Labels:   maps.Clone(p.Labels),
		DBProbe:  event.DBProbe{Schema: event.Schema, RunID: p.RunID, Target: p.Target, AWS: ae},
	}
}
