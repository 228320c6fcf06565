package detector

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// maxBuffered bounds a stream's reorder buffer whatever the reorder horizon:
// beyond it the oldest event is released as if its predecessors were lost.
const maxBuffered = 1 << 14

// item is one entry of a stream's reorder buffer: a probe (ev set) or a gap
// covering ticks lo..hi.
type item struct {
	lo, hi int64
	sched  time.Time // scheduled time of tick lo: orders and ages the item
	ev     *event.Event
	gapTo  time.Time // a gap's end: the scheduled time of the tick that ran
	kind   string    // a gap's report.Gap kind
}

// stream analyses one stream (observer x target x mode).
type stream struct {
	// noTokenTick is the last probe that had no IAM token, so a run of
	// them is one gap.
	noTokenTick int64
	d           *Detector
	tgt         *target
	key         event.StreamKey
	runID       string
	observer    event.Observer
	labels      map[string]string

	// Reorder buffer: items wait here until every older tick is in, or until
	// they are older than the reorder horizon (see Options.Reorder).
	buf       []item
	next      int64 // the next tick to release
	nextKnown bool
	newest    time.Time // latest scheduled time pushed

	released  bool
	lastTime  time.Time // analysis time of the last released item; never decreases
	lastSched time.Time // scheduled time of the last released tick
	lastTick  int64

	probes, failed, dropped int64
	first, last             time.Time

	read, write signal
	ro          readOnlyTracker
	id          identityTracker
	dns         dnsTracker
	lat         sketch
	repl        *report.Replication // nil until a green read was seen
	tl          timeline
	stale       staleTracker
	gaps        capped[report.Gap]
	omitted     map[string]int64
}

func newStream(d *Detector, tgt *target, ev *event.Event) *stream {
	n := d.opts.MaxListed
	s := &stream{
		d:        d,
		tgt:      tgt,
		key:      ev.Key(),
		runID:    ev.DBProbe.RunID,
		observer: ev.Observer,
		labels:   maps.Clone(ev.Labels),
		read:     newSignal(event.SignalRead, event.ActionReadWindowOpened, event.ActionReadWindowClosed, n),
		write:    newSignal(event.SignalWrite, event.ActionWriteWindowOpened, event.ActionWriteWindowClosed, n),
		gaps:     capped[report.Gap]{max: n},
		omitted:  map[string]int64{},
		tl:       newTimeline(d.opts.TimelineBuckets),
	}
	s.ro.list.max = n
	s.id.cutovers.max = n
	s.id.spans.max = n
	s.dns.changes.max = n
	s.stale.list.max = n
	if s.runID == "" {
		s.runID = d.runID
	}
	return s
}

// emit queues a finding for the caller of Observe or Flush.
func (s *stream) emit(action string, tick int64, at, start, end time.Time, f *event.Finding, msg string) {
	s.d.emit(&event.Event{
		Timestamp: at,
		Message:   msg,
		Event: event.Meta{
			ID:       findingID(s.runID, s.key, action, tick),
			Kind:     event.KindState,
			Category: []string{"database"},
			Type:     []string{findingType(action)},
			Dataset:  event.DatasetFinding,
			Action:   action,
			Start:    start,
			End:      end,
		},
		Observer: s.observer,
		Labels:   s.labels,
		DBProbe: event.DBProbe{
			Schema:  event.Schema,
			RunID:   s.runID,
			Target:  s.key.Target,
			Mode:    s.key.Mode,
			Tick:    tick,
			Finding: f,
		},
	})
}

// omit counts a finding that did not fit its list.
func (s *stream) omit(list string) { s.omitted[list]++ }

// push adds an event to the reorder buffer.
func (s *stream) push(it item) {
	if s.nextKnown && it.hi < s.next {
		s.dropped++
		return
	}
	if s.nextKnown && it.lo < s.next {
		it.lo = s.next // a gap whose start was already given up
	}
	i := sort.Search(len(s.buf), func(i int) bool { return s.buf[i].lo >= it.lo })
	if i < len(s.buf) && s.buf[i].lo == it.lo {
		s.dropped++ // the same tick twice
		return
	}
	s.buf = slices.Insert(s.buf, i, it)
	if it.sched.After(s.newest) {
		s.newest = it.sched
	}
}

// drain releases buffered items in tick order: an item goes once every
// older tick has been released, or once it has aged past the reorder
// horizon (or force is set), in which case the ticks still missing before
// it become a gap of kind "missing".
func (s *stream) drain(force bool) {
	for len(s.buf) > 0 {
		h := s.buf[0]
		aged := force || len(s.buf) > maxBuffered || s.newest.Sub(h.sched) > s.d.opts.Reorder
		if !s.nextKnown {
			// The first tick of a stream is not known in advance: an older
			// probe may still be running, so wait for the horizon.
			if !aged {
				return
			}
			s.next, s.nextKnown = h.lo, true
		}
		if h.hi < s.next {
			s.buf = s.buf[1:]
			s.dropped++
			continue
		}
		if h.lo > s.next {
			if !aged {
				return
			}
			s.missing(s.next, h.lo-1, h.sched)
		}
		if h.lo < s.next {
			h.lo = s.next
		}
		s.buf[0] = item{}
		s.buf = s.buf[1:]
		s.release(h)
		s.next = h.hi + 1
	}
	if len(s.buf) == 0 {
		s.buf = nil // let the backing array go after a burst
	}
}

// missing releases ticks lo..hi, for which no event exists, as a gap ending
// at the scheduled time to of tick hi+1.
func (s *stream) missing(lo, hi int64, to time.Time) {
	from := s.lastSched
	if s.released && hi+1 > s.lastTick {
		from = s.lastSched.Add(to.Sub(s.lastSched) / time.Duration(hi+1-s.lastTick))
	}
	s.release(item{lo: lo, hi: hi, sched: from, gapTo: to, kind: report.GapMissing})
}

func (s *stream) release(it item) {
	if it.ev == nil {
		from := later(it.sched, s.lastTime)
		to := later(it.gapTo, from)
		s.lastTime = from
		s.lastSched = it.gapTo
		if n := it.hi - it.lo + 1; n > 0 {
			s.lastSched = it.gapTo.Add(-it.gapTo.Sub(it.sched) / time.Duration(n))
		}
		s.lastTick, s.released = it.hi, true
		s.gap(it.lo, from, to, it.hi-it.lo+1, it.kind)
		return
	}
	t := probeTime(it.ev)
	t = later(t, s.lastTime)
	s.lastTime, s.lastSched, s.lastTick, s.released = t, it.sched, it.lo, true
	s.analyse(it.ev, t)
	s.tgt.advance(t)
}

// targetNotableSlack is how close to a notable probe of another stream of
// the target a probe counts as notable too, at least: streams of a target
// probe at about the same times.
const targetNotableSlack = 2 * time.Second

// probeTime is when a probe looked: its actual start, else its scheduled
// time, else its timestamp.
func probeTime(ev *event.Event) time.Time {
	switch {
	case !ev.Event.Start.IsZero():
		return ev.Event.Start.UTC()
	case !ev.DBProbe.Scheduled.IsZero():
		return ev.DBProbe.Scheduled.UTC()
	}
	return ev.Timestamp.UTC()
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// analyse applies one probe, released in tick order, at time t.
func (s *stream) analyse(ev *event.Event, t time.Time) {
	p := &ev.DBProbe
	tick := p.Tick
	class := ""
	if ev.Error != nil {
		class = ev.Error.Type
	}
	if class == event.ClassIAMToken {
		// dbprobe could not even try: nothing is known of the database.
		s.probes++
		s.noToken(tick, t)
		return
	}
	readOK := p.Read != nil && p.Read.OK
	writeSeen := p.Write != nil
	writeOK := writeSeen && p.Write.OK
	failed := !readOK || (writeSeen && !writeOK)

	s.probes++
	if failed {
		s.failed++
	}
	if s.first.IsZero() {
		s.first = t
	}
	s.last = t

	s.read.observe(s, t, tick, readOK, class)
	if writeSeen {
		s.write.observe(s, t, tick, writeOK, class)
	}

	srv := s.id.server(p.Server)
	// A probe is notable for the timeline's detail when it failed or when
	// what answered changed: the server reuses its copy while nothing the
	// detector reports about it changes.
	notable := failed || (srv != nil && s.id.last != nil && srv != s.id.last)
	roByWrite := writeSeen && !writeOK && class == event.ClassReadOnly
	s.ro.observe(s, t, tick, srv, srv.AnyReadOnly() || roByWrite)
	if srv != nil {
		s.id.observe(s, t, tick, srv)
		s.tgt.answered(srv, t)
	}
	if p.DNS != nil && (len(p.DNS.Answers) > 0 || class == event.ClassDNSNotFound) {
		if s.dns.observe(s, t, tick, p.DNS.Answers) {
			notable = true
		}
	}

	if r := p.Replication; r != nil {
		if s.repl == nil {
			s.repl = &report.Replication{}
		}
		if r.LagSeconds == nil {
			s.repl.Errors++
		} else {
			lag := *r.LagSeconds
			s.repl.Samples++
			s.repl.LastSeconds, s.repl.LastAt = lag, t
			if s.repl.Samples == 1 || lag > s.repl.MaxSeconds {
				s.repl.MaxSeconds, s.repl.MaxAt = lag, t
			}
		}
	}

	var latency float64
	if readOK && p.Latency != nil {
		latency = p.Latency.Total
		s.lat.add(latency)
	}
	// The target's detail figures show all its streams: a quiet stream
	// keeps its detail going while another of the target's is notable.
	// Streams are analysed as their probes complete, a failing one up to
	// its timeout behind the others: the reorder horizon bounds that.
	if notable {
		s.tgt.notable = later(t, s.tgt.notable)
	} else if !s.tgt.notable.IsZero() && (t.Sub(s.tgt.notable).Abs() <= max(targetNotableSlack, s.d.opts.Reorder)) {
		notable = true
	}
	s.tl.detail.learn(t, p.Scheduled, tick)
	s.tl.add(t, failed, readOK, latency, notable)

	s.stale.push(staleEntry{
		t:         t,
		tick:      tick,
		server:    srv,
		ip:        connectedIP(ev, srv),
		writeSeen: writeSeen,
		writeOK:   writeOK,
	})
}

// connectedIP is the address the probe talked to.
func connectedIP(ev *event.Event, srv *event.Server) string {
	if ev.Destination != nil && ev.Destination.IP != "" {
		return ev.Destination.IP
	}
	addr := ""
	if ev.Destination != nil {
		addr = ev.Destination.Address
	}
	if addr == "" && srv != nil {
		addr = srv.Address
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return ""
}

// gap applies ticks with no result: nothing is known from 'from' to 'to',
// so every open window, read-only stretch and stale episode ends at its last
// observation and nothing carries its bounds across.
func (s *stream) gap(tick int64, from, to time.Time, ticks int64, kind string) {
	s.unknown(tick, from)
	if !s.gaps.add(report.Gap{From: from, To: to, Seconds: seconds(to.Sub(from)), Ticks: ticks, Kind: kind}) {
		s.omit("gaps")
	}
	s.tgt.advance(to)
}

// unknown ends what is known at tick: nothing carries across it.
func (s *stream) unknown(tick int64, t time.Time) {
	s.read.gap(s, tick)
	s.write.gap(s, tick)
	s.ro.gap(s, tick)
	s.id.gap()
	s.dns.gap()
	s.stale.push(staleEntry{t: t, tick: tick, gap: true})
}

// noToken applies a probe that had no IAM token: a gap, extended while the
// following probes have none either.
func (s *stream) noToken(tick int64, t time.Time) {
	s.unknown(tick, t)
	if n := len(s.gaps.items); n > 0 && s.noTokenTick == tick-1 && s.gaps.items[n-1].Kind == report.GapNoToken {
		g := &s.gaps.items[n-1]
		g.To, g.Ticks = t, g.Ticks+1
		g.Seconds = seconds(g.To.Sub(g.From))
	} else if !s.gaps.add(report.Gap{From: t, To: t, Ticks: 1, Kind: report.GapNoToken}) {
		s.omit("gaps")
	}
	s.noTokenTick = tick
	s.tgt.advance(t)
}

// snapshot renders the stream as it stands.
func (s *stream) snapshot() report.Stream {
	r := report.Stream{
		Observer:   s.key.Observer,
		Target:     s.key.Target,
		Mode:       s.key.Mode,
		Probes:     s.probes,
		Failed:     s.failed,
		Dropped:    s.dropped,
		Read:       s.read.snapshot(),
		Write:      s.write.snapshot(),
		ReadOnly:   s.ro.snapshot(),
		Cutovers:   s.id.cutovers.snapshot(),
		DNSChanges: s.dns.changes.snapshot(),
		Stale:      s.stale.snapshot(),
		Gaps:       s.gaps.snapshot(),
		Latency:    s.lat.snapshot(),
		Servers:    s.id.spanSnapshot(),
		Timeline:   s.tl.snapshot(),
		Details:    s.tl.detail.snapshot(),
	}
	if s.repl != nil {
		r.Replication = ptr(*s.repl)
	}
	if s.probes > 0 {
		r.From, r.To = ptr(s.first), ptr(s.last)
	}
	if len(s.omitted) > 0 {
		r.Omitted = copyMap(s.omitted)
	}
	return r
}

// readOnlyTracker finds stretches in which the answering server refused
// writes.
type readOnlyTracker struct {
	cur  *report.ReadOnly
	tick int64
	list capped[report.ReadOnly]
}

// observe applies one probe. srv is the server that answered (nil: no
// answer, which tells nothing about read-only state unless a write failed
// as read_only); ro says whether it refused writes.
func (r *readOnlyTracker) observe(s *stream, t time.Time, tick int64, srv *event.Server, ro bool) {
	switch {
	case ro:
		if r.cur != nil && srv != nil && srv.Identity != r.cur.Server.Identity {
			r.close(s, t, tick, report.EndsRecovered) // another read-only server took over
		}
		if r.cur == nil {
			r.cur = &report.ReadOnly{Start: t, Server: srv, Ends: report.EndsOpen}
			r.tick = tick
			s.emit(event.ActionReadOnlyOn, tick, t, t, time.Time{},
				&event.Finding{Start: ptr(t), Server: srv},
				fmt.Sprintf("%s answered read-only on %s", report.Server(srv), s.key))
		}
		r.cur.Last = t
		r.cur.Probes++
	case srv != nil && r.cur != nil:
		r.close(s, t, tick, report.EndsRecovered)
	}
}

func (r *readOnlyTracker) gap(s *stream, tick int64) {
	if r.cur != nil {
		r.close(s, time.Time{}, tick, report.EndsGap)
	}
}

// close ends the open stretch at end (zero when a gap ended it).
func (r *readOnlyTracker) close(s *stream, end time.Time, tick int64, ends string) {
	c := *r.cur
	r.cur = nil
	c.Ends = ends
	var at time.Time
	c.End, at = ended(end, c.Last)
	if !r.list.add(c) {
		s.omit("read_only")
	}
	s.emit(event.ActionReadOnlyOff, tick, at, c.Start, at,
		&event.Finding{Start: ptr(c.Start), End: c.End, Last: ptr(c.Last), Probes: c.Probes, Server: c.Server, Ends: ends},
		fmt.Sprintf("%s read-only on %s from %s for %s", report.Server(c.Server), s.key, report.Clock(c.Start), report.Seconds(at.Sub(c.Start).Seconds())))
}

func (r *readOnlyTracker) snapshot() []report.ReadOnly {
	out := r.list.snapshot()
	if r.cur != nil && !r.list.full() {
		out = append(out, *r.cur)
	}
	return out
}

// identityTracker follows which server answered: cutovers and the "who
// answered" lane.
type identityTracker struct {
	last     *event.Server // immutable copy; shared by report entries
	lastT    time.Time
	gapSince bool
	seen     map[string]bool
	cutovers capped[report.Cutover]
	spans    capped[report.Span]
	span     *report.Span
}

// maxIdentities bounds the set of servers remembered for rollback detection.
const maxIdentities = 256

// server returns an immutable copy of srv, reusing the previous copy when
// nothing the detector reports has changed, so that steady state allocates
// nothing. A server without identity counts as no answer.
func (r *identityTracker) server(srv *event.Server) *event.Server {
	if srv == nil || srv.Identity == "" {
		return nil
	}
	if r.last != nil && sameServer(r.last, srv) {
		return r.last
	}
	return copyServer(srv)
}

func (r *identityTracker) observe(s *stream, t time.Time, tick int64, srv *event.Server) {
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	prev := r.last
	if prev != nil && prev.Identity != srv.Identity {
		c := report.Cutover{
			At:        mid(r.lastT, t),
			Earliest:  r.lastT,
			Latest:    t,
			From:      prev,
			To:        srv,
			Rollback:  r.seen[srv.Identity],
			AcrossGap: r.gapSince,
		}
		if !r.cutovers.add(c) {
			s.omit("cutovers")
		}
		s.tgt.register(switchRec{latest: t, from: prev.Identity, to: srv.Identity})
		msg := fmt.Sprintf("%s cut over from %s to %s at %s (%s)", s.key, report.Server(prev), report.Server(srv), report.Clock(c.At), report.Plusminus(c.Earliest, c.Latest))
		if c.Rollback {
			msg += ", back to a server it had left"
		}
		s.emit(event.ActionCutover, tick, c.At, c.Earliest, c.Latest,
			&event.Finding{At: ptr(c.At), Earliest: ptr(c.Earliest), Latest: ptr(c.Latest), From: prev, To: srv, Rollback: c.Rollback, AcrossGap: c.AcrossGap},
			msg)
	}
	if prev == nil || prev.Identity != srv.Identity {
		if len(r.seen) < maxIdentities {
			r.seen[srv.Identity] = true
		}
		r.closeSpan(s)
		r.span = &report.Span{Start: t, Identity: srv.Identity, Address: srv.Address}
	}
	r.span.Last = t
	r.span.Probes++
	r.last, r.lastT, r.gapSince = srv, t, false
}

func (r *identityTracker) closeSpan(s *stream) {
	if r.span == nil {
		return
	}
	if !r.spans.add(*r.span) {
		s.omit("servers")
	}
	r.span = nil
}

func (r *identityTracker) gap() { r.gapSince = true }

func (r *identityTracker) spanSnapshot() []report.Span {
	out := r.spans.snapshot()
	if r.span != nil && !r.spans.full() {
		out = append(out, *r.span)
	}
	return out
}

func sameServer(a, b *event.Server) bool {
	return a.Identity == b.Identity && a.Address == b.Address && a.Hostname == b.Hostname &&
		a.Version == b.Version && a.Role == b.Role && eqBool(a.ReadOnly, b.ReadOnly) &&
		eqBool(a.SuperReadOnly, b.SuperReadOnly) && eqBool(a.InnoDBReadOnly, b.InnoDBReadOnly)
}

func eqBool(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// copyServer deep-copies srv so the detector keeps nothing of the caller's
// event.
func copyServer(srv *event.Server) *event.Server {
	c := *srv
	c.ServerID = clonePtr(srv.ServerID)
	c.Port = clonePtr(srv.Port)
	c.ReadOnly = clonePtr(srv.ReadOnly)
	c.SuperReadOnly = clonePtr(srv.SuperReadOnly)
	c.InnoDBReadOnly = clonePtr(srv.InnoDBReadOnly)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// dnsTracker finds changes of the resolved answer set.
type dnsTracker struct {
	last     []string // sorted, deduplicated; nil before the first answer
	have     bool
	lastT    time.Time
	gapSince bool
	changes  capped[report.DNSChange]
}

// observe applies one answer; it reports whether the answer changed.
func (r *dnsTracker) observe(s *stream, t time.Time, tick int64, answers []string) (changed bool) {
	if r.have && sameSet(r.last, answers) {
		r.lastT, r.gapSince = t, false
		return false
	}
	changed = r.have
	set := answerSet(answers)
	if r.have {
		c := report.DNSChange{At: mid(r.lastT, t), Earliest: r.lastT, Latest: t, From: r.last, To: set, AcrossGap: r.gapSince}
		if !r.changes.add(c) {
			s.omit("dns_changes")
		}
		s.tgt.register(switchRec{dns: true, latest: t, fromSet: r.last, toSet: set})
		s.emit(event.ActionDNSChange, tick, c.At, c.Earliest, c.Latest,
			&event.Finding{At: ptr(c.At), Earliest: ptr(c.Earliest), Latest: ptr(c.Latest), FromAddrs: c.From, ToAddrs: c.To, AcrossGap: c.AcrossGap},
			fmt.Sprintf("%s: DNS answer changed from %s to %s at %s (%s)", s.key, report.Addrs(c.From), report.Addrs(c.To), report.Clock(c.At), report.Plusminus(c.Earliest, c.Latest)))
	}
	r.last, r.have, r.lastT, r.gapSince = set, true, t, false
	return changed
}

func (r *dnsTracker) gap() { r.gapSince = true }

// answerSet is the sorted set of answers; never nil, so an empty set (the
// name did not resolve) differs from "no answer yet".
func answerSet(a []string) []string {
	out := make([]string, 0, len(a))
	out = append(out, a...)
	slices.Sort(out)
	return slices.Compact(out)
}

// sameSet reports whether answers, in any order and with repeats, is the
// sorted set set. It allocates nothing: it runs on every probe.
func sameSet(set, answers []string) bool {
	for _, a := range answers {
		if _, ok := slices.BinarySearch(set, a); !ok {
			return false
		}
	}
	// Every answer is in set; set has no member missing from answers if
	// answers holds at least len(set) distinct values.
	if len(answers) == len(set) {
		return isSortedUnique(answers) || len(answerSet(answers)) == len(set)
	}
	if len(answers) < len(set) {
		return false
	}
	return len(answerSet(answers)) == len(set)
}

func isSortedUnique(a []string) bool {
	for i := 1; i < len(a); i++ {
		if a[i-1] >= a[i] {
			return false
		}
	}
	return true
}
