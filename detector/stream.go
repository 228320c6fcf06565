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

// maxBuffered bounds the events the detector holds, and the ticks a stream
// waits for, whatever the horizons: beyond it the oldest is released.
const maxBuffered = 1 << 14

// item is one event in release order: a probe (ev set) or a gap covering
// ticks lo..hi.
type item struct {
	lo, hi int64
	sched  time.Time // scheduled time of tick lo
	obs    time.Time // when it was observed: orders the release
	ev     *event.Event
	gapTo  time.Time // a gap's end: the scheduled time of the tick that ran
	kind   string    // a gap's report.Gap kind
}

// ticks is a run of ticks seen, waiting for the ticks before it.
type ticks struct {
	lo, hi          int64
	sched, schedEnd time.Time // scheduled time of tick lo, and of tick hi+1
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

	// Ticks accounted for: every tick before next has been seen or
	// reported missing; ahead holds runs seen beyond it, sorted.
	next      int64
	nextKnown bool
	ahead     []ticks
	lastSched time.Time // scheduled time of tick next-1

	staleT time.Time // latest time a probe was queued for stale judgement

	// iv is the probe interval, once two probes with scheduled times tell
	// it: a success slower than it is slow.
	iv                                  time.Duration
	ivSched                             time.Time
	ivTick                              int64
	probes, failed, dropped, late, slow int64
	first, last                         time.Time

	read, write signal
	ro          readOnlyTracker
	id          identityTracker
	dns         dnsTracker
	lat         sketch
	repl        *report.Replication // nil until a green read was seen
	tl          timeline
	stale       staleTracker
	gaps        capped[report.Gap]
	omitted     map[string]int64 // nil until a list is full
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
func (s *stream) omit(list string) {
	if s.omitted == nil {
		s.omitted = map[string]int64{}
	}
	s.omitted[list]++
}

// push analyses an event released by the detector.
func (s *stream) push(it item) {
	if it.ev == nil {
		s.gap(it.lo, it.sched, later(it.gapTo, it.sched), it.hi-it.lo+1, it.kind)
		return
	}
	s.analyse(it.ev, it.obs)
	s.tgt.advance(probeTime(it.ev))
}

// see records ticks lo..hi of it as arrived; false if any of them had
// arrived before (or was given up as missing).
func (s *stream) see(it item) bool {
	end := it.gapTo
	if it.ev != nil || end.IsZero() {
		end = it.sched
	} else if n := it.hi - it.lo + 1; n > 0 {
		end = it.gapTo.Add(-it.gapTo.Sub(it.sched) / time.Duration(n))
	}
	if s.nextKnown && it.hi < s.next {
		return false
	}
	lo := it.lo
	if s.nextKnown {
		lo = max(lo, s.next)
		if lo == s.next && (len(s.ahead) == 0 || s.ahead[0].lo > it.hi) {
			// In order, as nearly every event is: nothing to hold, and
			// no run to allocate.
			s.next, s.lastSched = it.hi+1, end
			s.collapse()
			return true
		}
	}
	i := sort.Search(len(s.ahead), func(i int) bool { return s.ahead[i].hi >= lo })
	if i < len(s.ahead) && s.ahead[i].lo <= it.hi {
		return false
	}
	switch {
	case i > 0 && s.ahead[i-1].hi+1 == lo:
		s.ahead[i-1].hi, s.ahead[i-1].schedEnd = it.hi, end
	default:
		s.ahead = slices.Insert(s.ahead, i, ticks{lo: lo, hi: it.hi, sched: it.sched, schedEnd: end})
		i++
	}
	if i < len(s.ahead) && s.ahead[i-1].hi+1 == s.ahead[i].lo {
		s.ahead[i-1].hi, s.ahead[i-1].schedEnd = s.ahead[i].hi, s.ahead[i].schedEnd
		s.ahead = slices.Delete(s.ahead, i, i+1)
	}
	s.collapse()
	return true
}

// collapse moves next past the runs that continue it.
func (s *stream) collapse() {
	for s.nextKnown && len(s.ahead) > 0 && s.ahead[0].lo == s.next {
		s.next, s.lastSched = s.ahead[0].hi+1, s.ahead[0].schedEnd
		s.ahead[0] = ticks{}
		s.ahead = s.ahead[1:]
	}
	if len(s.ahead) == 0 {
		s.ahead = nil
	}
}

// resolveHoles reports ticks that never came as missing, once the reorder
// horizon has passed the tick after them (or force is set). The stream's
// first tick is known once the horizon has passed the first one seen: an
// older probe may still be running until then.
func (s *stream) resolveHoles(watermark time.Time, force bool) {
	reorder := s.d.opts.Reorder
	for len(s.ahead) > 0 {
		h := s.ahead[0]
		if !force && !watermark.After(h.sched.Add(reorder)) && len(s.ahead) < maxBuffered {
			if s.nextKnown {
				s.certainlyMissing(watermark.Add(-reorder), h)
			}
			return
		}
		if !s.nextKnown {
			s.next, s.nextKnown = h.lo, true
			s.collapse()
			continue
		}
		s.missing(s.next, h.lo-1, h.sched)
		s.next = h.lo
		s.collapse()
	}
}

// certainlyMissing reports the first ticks of the hole before h scheduled
// before limit (their events would have arrived by now) as missing at once,
// so that a long stop of dbprobe is unknown time while the window it
// interrupted is still open.
func (s *stream) certainlyMissing(limit time.Time, h ticks) {
	n := h.lo - s.next
	if n <= 0 || !h.sched.After(s.lastSched) {
		return
	}
	iv := h.sched.Sub(s.lastSched) / time.Duration(n+1)
	if iv <= 0 || !limit.After(s.lastSched) {
		return
	}
	m := min(int64(limit.Sub(s.lastSched)/iv), n)
	if m <= 0 {
		return
	}
	s.missingFrom(s.next, s.next+m-1, s.lastSched.Add(iv), s.lastSched.Add(time.Duration(m+1)*iv))
	s.next, s.lastSched = s.next+m, s.lastSched.Add(time.Duration(m)*iv)
}

// missing reports ticks lo..hi, for which no event exists, as unknown time
// ending at the scheduled time to of tick hi+1.
func (s *stream) missing(lo, hi int64, to time.Time) {
	from := s.lastSched
	if n := hi - lo + 2; to.After(from) {
		from = s.lastSched.Add(to.Sub(s.lastSched) / time.Duration(n))
	}
	s.missingFrom(lo, hi, from, to)
}

// missingFrom reports ticks lo..hi, scheduled from 'from', as missing until
// 'to'.
func (s *stream) missingFrom(lo, hi int64, from, to time.Time) {
	to = later(to, from)
	// Known this late, it only tells the windows how much of them is
	// unknown.
	s.read.unknownLate(from, to)
	s.write.unknownLate(from, to)
	s.listGap(report.Gap{From: from, To: to, Seconds: seconds(to.Sub(from)), Ticks: hi - lo + 1, Kind: report.GapMissing})
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

// analyse applies one probe, observed at obs.
func (s *stream) analyse(ev *event.Event, obs time.Time) {
	p := &ev.DBProbe
	tick := p.Tick
	t := probeTime(ev)
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
	if s.first.IsZero() || t.Before(s.first) {
		s.first = t
	}
	s.last = later(s.last, t)

	rev := readEvidence(ev)
	s.read.observe(s, obs, tick, rev, !readOK, class)
	if writeSeen {
		s.write.observe(s, obs, tick, writeEvidence(ev), !writeOK, class)
	}

	srv := s.id.server(p.Server)
	// A probe is notable for the timeline's detail when it failed or when
	// what answered changed: the server reuses its copy while nothing the
	// detector reports about it changes.
	notable := failed || (srv != nil && s.id.last != nil && srv != s.id.last)
	roByWrite := writeSeen && !writeOK && class == event.ClassReadOnly
	// A write refused as read-only was refused during the write phase,
	// which can end long after the query phase that identified the server
	// (a write queued behind a lock until the server turned read-only).
	ans := rev
	if roByWrite && !srv.AnyReadOnly() {
		ans = writeEvidence(ev)
	}
	s.ro.observe(s, tick, srv, srv.AnyReadOnly() || roByWrite, ans)
	if srv != nil {
		s.id.observe(s, tick, srv, rev)
		s.tgt.answered(srv, t)
	}
	if p.DNS != nil && (len(p.DNS.Answers) > 0 || class == event.ClassDNSNotFound) {
		lo, hi, _ := phasesOf(ev).interval(event.PhaseDNS)
		if s.dns.observe(s, tick, lo, hi, p.DNS.Answers) {
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
	s.learnInterval(p.Scheduled, tick)
	slow := readOK && !failed && s.iv > 0 && p.Latency != nil && msDuration(p.Latency.Total) > s.iv
	if slow {
		s.slow++
	}
	s.tl.detail.learn(t, p.Scheduled, tick)
	s.tl.add(t, failed, readOK, latency, notable, slow)

	// Stale episodes are judged probe by probe in the order analysed, at
	// times that never go back.
	s.staleT = later(s.staleT, t)
	servedLo, servedHi, _ := phasesOf(ev).interval(event.PhaseQuery)
	s.stale.push(staleEntry{
		t:         s.staleT,
		servedLo:  servedLo,
		servedHi:  servedHi,
		tick:      tick,
		server:    srv,
		ip:        connectedIP(ev, srv),
		writeSeen: writeSeen,
		writeOK:   writeOK,
	})
}

// learnInterval learns the stream's probe interval from two scheduled
// probes.
func (s *stream) learnInterval(sched time.Time, tick int64) {
	switch {
	case s.iv > 0 || sched.IsZero():
	case s.ivSched.IsZero():
		s.ivSched, s.ivTick = sched, tick
	case tick != s.ivTick:
		if iv := sched.Sub(s.ivSched) / time.Duration(tick-s.ivTick); iv > 0 {
			s.iv = iv
		}
	}
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

// gap applies ticks the probe loop could not run: nothing is known from
// 'from' to 'to'. It never counts as downtime and splits no window,
// read-only stretch or stale episode.
func (s *stream) gap(tick int64, from, to time.Time, ticks int64, kind string) {
	s.unknown(tick, from, to)
	s.listGap(report.Gap{From: from, To: to, Seconds: seconds(to.Sub(from)), Ticks: ticks, Kind: kind})
	s.tgt.advance(to)
}

// unknown applies a stretch [from, to] in which nothing is known at tick.
func (s *stream) unknown(tick int64, from, to time.Time) {
	s.read.unknown(from, to)
	s.write.unknown(from, to)
	s.ro.gap()
	s.id.gap()
	s.dns.gap()
	s.staleT = later(s.staleT, from)
	s.stale.push(staleEntry{t: s.staleT, tick: tick, gap: true})
}

// noToken applies a probe that had no IAM token: a gap, extended while the
// following probes have none either.
func (s *stream) noToken(tick int64, t time.Time) {
	s.unknown(tick, t, t)
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

func (s *stream) listGap(g report.Gap) {
	if g.Kind == report.GapMissing {
		// The rest of a hole reported in parts (see certainlyMissing).
		// Skipped ticks are listed as soon as the probe loop reports
		// them, so a later gap may sit between the parts: look past it,
		// or a replay of the journal, which sees the parts together,
		// would count one hole fewer.
		for i := len(s.gaps.items) - 1; i >= 0; i-- {
			if prev := &s.gaps.items[i]; prev.Kind == g.Kind && prev.To.Equal(g.From) {
				prev.To, prev.Ticks = g.To, prev.Ticks+g.Ticks
				prev.Seconds = seconds(prev.To.Sub(prev.From))
				return
			}
		}
	}
	if !s.gaps.add(g) {
		s.omit("gaps")
	}
}

func (s *stream) gapSnapshot() []report.Gap {
	g := s.gaps.snapshot()
	// Missing ticks are known only once the reorder horizon passed them.
	slices.SortStableFunc(g, func(a, b report.Gap) int { return a.From.Compare(b.From) })
	return g
}

// snapshot renders the stream as it stands.
func (s *stream) snapshot() report.Stream {
	r := report.Stream{
		Observer:   s.key.Observer,
		Target:     s.key.Target,
		Mode:       s.key.Mode,
		Probes:     s.probes,
		Failed:     s.failed,
		Slow:       s.slow,
		Dropped:    s.dropped,
		Late:       s.late,
		Read:       s.read.snapshot(),
		Write:      s.write.snapshot(),
		ReadOnly:   s.ro.snapshot(),
		Cutovers:   s.id.cutovers.snapshot(),
		DNSChanges: s.dns.changes.snapshot(),
		Stale:      s.stale.snapshot(),
		Gaps:       s.gapSnapshot(),
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
// writes. Each edge is a bracket from the instants the answers were served
// in (see evidence.go).
type readOnlyTracker struct {
	cur *report.ReadOnly
	// writableLo: the latest a writable server is known to have answered
	// at or after, since the last stretch; zero when unknown.
	writableLo time.Time
	list       capped[report.ReadOnly]
	closedLast bool // the list's last stretch is the last one closed
}

// observe applies one probe. srv is the server that answered (nil: no
// answer, which tells nothing about read-only state unless a write failed
// as read_only); ro says whether it refused writes; e is when it answered.
func (r *readOnlyTracker) observe(s *stream, tick int64, srv *event.Server, ro bool, e evidence) {
	if e.kind != upAt && !ro {
		return
	}
	c := r.cur
	switch {
	case ro:
		if c != nil && srv != nil && c.Server != nil && srv.Identity != c.Server.Identity {
			r.close(s, e.hi, tick, report.EndsRecovered) // another read-only server took over
			c = nil
		}
		if c == nil && r.joinClosed(srv, e) {
			return
		}
		if c == nil {
			c = &report.ReadOnly{Edges: report.Edges{Start: e.hi, StartLatest: e.hi, EndEarliest: e.lo}, Server: srv, Ends: report.EndsOpen}
			if !r.writableLo.IsZero() {
				c.StartEarliest = ptr(minTime(r.writableLo, e.hi))
				c.Start = mid(*c.StartEarliest, e.hi)
			}
			r.cur = c
			s.emit(event.ActionReadOnlyOn, tick, c.Start, c.Start, time.Time{},
				&event.Finding{Start: ptr(c.Start), StartEarliest: c.StartEarliest, StartLatest: ptr(c.StartLatest), Server: srv},
				fmt.Sprintf("%s answered read-only on %s", report.Server(srv), s.key))
		}
		if e.hi.Before(c.StartLatest) {
			c.StartLatest, c.Start = e.hi, e.hi
			if c.StartEarliest != nil {
				c.StartEarliest = ptr(minTime(*c.StartEarliest, e.hi))
				c.Start = mid(*c.StartEarliest, e.hi)
			}
		}
		c.EndEarliest = later(c.EndEarliest, e.lo)
		c.Last = later(c.Last, e.hi)
		c.Probes++
	case c == nil:
		r.writableLo = later(r.writableLo, e.lo)
	case !e.lo.Before(c.StartLatest):
		r.close(s, e.hi, tick, report.EndsRecovered)
		r.writableLo = e.lo
	case e.hi.Before(c.EndEarliest) && (c.StartEarliest == nil || e.lo.After(*c.StartEarliest)):
		// A writable answer observed late, from before the stretch.
		c.StartEarliest = ptr(minTime(e.lo, c.StartLatest))
		c.Start = mid(*c.StartEarliest, c.StartLatest)
	}
}

// joinClosed counts a read-only answer observed after the stretch it may
// belong to closed (probes overlap) to that stretch.
func (r *readOnlyTracker) joinClosed(srv *event.Server, e evidence) bool {
	n := len(r.list.items)
	if n == 0 || !r.closedLast {
		return false
	}
	c := &r.list.items[n-1]
	if c.EndLatest == nil || !e.lo.Before(*c.EndLatest) || (srv != nil && c.Server != nil && srv.Identity != c.Server.Identity) {
		return false
	}
	c.Probes++
	return true
}

// gap applies an unknown stretch: it splits no stretch (the next answer
// says whether the server is still read-only), but the next onset is not
// bounded by a writable answer before it.
func (r *readOnlyTracker) gap() {
	r.writableLo = time.Time{}
}

// close ends the open stretch: a writable server answered by endLatest
// (zero when a gap ended it).
func (r *readOnlyTracker) close(s *stream, endLatest time.Time, tick int64, ends string) {
	c := *r.cur
	r.cur = nil
	c.Ends = ends
	at := c.EndEarliest
	if !endLatest.IsZero() {
		endBy(&c.Edges, endLatest)
		at = *c.End
	}
	r.closedLast = r.list.add(c)
	if !r.closedLast {
		s.omit("read_only")
	}
	s.emit(event.ActionReadOnlyOff, tick, at, c.Start, at,
		&event.Finding{Start: ptr(c.Start), End: c.End, Last: ptr(c.Last), Probes: c.Probes, Server: c.Server, Ends: ends,
			StartEarliest: c.StartEarliest, StartLatest: ptr(c.StartLatest), EndEarliest: ptr(c.EndEarliest), EndLatest: c.EndLatest},
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
	last   *event.Server // immutable copy; shared by report entries
	lastLo time.Time     // the latest the last server is known to have answered at or after
	// The last cutover: the new server's first answer, and the old server.
	cutLatest time.Time
	cutFrom   string
	gapSince  bool
	seen      map[string]bool
	cutovers  capped[report.Cutover]
	spans     capped[report.Span]
	span      *report.Span
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

// observe applies an answer by srv, served at some instant of e.
func (r *identityTracker) observe(s *stream, tick int64, srv *event.Server, e evidence) {
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	prev := r.last
	if prev != nil && prev.Identity != srv.Identity && r.lateAnswer(srv, e) {
		return
	}
	if prev != nil && prev.Identity != srv.Identity {
		earliest := minTime(r.lastLo, e.hi)
		c := report.Cutover{
			At:        mid(earliest, e.hi),
			Earliest:  earliest,
			Latest:    e.hi,
			From:      prev,
			To:        srv,
			Rollback:  r.seen[srv.Identity],
			AcrossGap: r.gapSince,
		}
		if !r.cutovers.add(c) {
			s.omit("cutovers")
		}
		r.cutLatest, r.cutFrom = e.hi, prev.Identity
		s.tgt.register(switchRec{earliest: earliest, latest: e.hi, from: prev.Identity, to: srv.Identity})
		msg := fmt.Sprintf("%s cut over from %s to %s at %s (%s)", s.key, report.Server(prev), report.Server(srv), report.Clock(c.At), report.Plusminus(c.Earliest, c.Latest))
		if c.Rollback {
			msg += ", back to a server it had left"
		}
		s.emit(event.ActionCutover, tick, c.At, c.Earliest, c.Latest,
			&event.Finding{At: ptr(c.At), Earliest: ptr(c.Earliest), Latest: ptr(c.Latest), From: prev, To: srv, Rollback: c.Rollback, AcrossGap: c.AcrossGap},
			msg)
		r.lastLo = time.Time{}
	}
	if prev == nil || prev.Identity != srv.Identity {
		if len(r.seen) < maxIdentities {
			r.seen[srv.Identity] = true
		}
		r.closeSpan(s)
		r.span = &report.Span{Start: e.hi, Identity: srv.Identity, Address: srv.Address}
	}
	r.span.Last = later(r.span.Last, e.hi)
	r.span.Probes++
	r.last, r.lastLo, r.gapSince = srv, later(r.lastLo, e.lo), false
}

// lateAnswer reports whether an answer by the server the stream just cut
// over from was served before the new server's first answer (probes
// overlap: one answered by the old server can complete after one answered
// by the new); it then narrows the cutover instead of counting another.
func (r *identityTracker) lateAnswer(srv *event.Server, e evidence) bool {
	n := len(r.cutovers.items)
	if srv.Identity != r.cutFrom || !e.lo.Before(r.cutLatest) || n == 0 {
		return false
	}
	c := &r.cutovers.items[n-1]
	if c.From.Identity == srv.Identity && c.Latest.Equal(r.cutLatest) && e.lo.After(c.Earliest) {
		c.Earliest = e.lo
		c.At = mid(c.Earliest, c.Latest)
	}
	return true
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
	lastLo   time.Time // the latest the last answer is known to have been given at or after
	gapSince bool
	changes  capped[report.DNSChange]
}

// observe applies one answer, resolved at some instant of [lo, hi]; it
// reports whether the answer changed.
func (r *dnsTracker) observe(s *stream, tick int64, lo, hi time.Time, answers []string) (changed bool) {
	if r.have && sameSet(r.last, answers) {
		r.lastLo, r.gapSince = later(r.lastLo, lo), false
		return false
	}
	if n := len(r.changes.items); r.have && n > 0 && lo.Before(r.changes.items[n-1].Latest) && sameSet(r.changes.items[n-1].From, answers) {
		// An answer given before the change, observed after it (its
		// probe then hung on the old address): it narrows the change.
		if c := &r.changes.items[n-1]; lo.After(c.Earliest) {
			c.Earliest = minTime(lo, c.Latest)
			c.At = mid(c.Earliest, c.Latest)
		}
		return false
	}
	changed = r.have
	set := answerSet(answers)
	if r.have {
		earliest := minTime(r.lastLo, hi)
		c := report.DNSChange{At: mid(earliest, hi), Earliest: earliest, Latest: hi, From: r.last, To: set, AcrossGap: r.gapSince}
		if !r.changes.add(c) {
			s.omit("dns_changes")
		}
		s.tgt.register(switchRec{dns: true, earliest: earliest, latest: hi, fromSet: r.last, toSet: set})
		s.emit(event.ActionDNSChange, tick, c.At, c.Earliest, c.Latest,
			&event.Finding{At: ptr(c.At), Earliest: ptr(c.Earliest), Latest: ptr(c.Latest), FromAddrs: c.From, ToAddrs: c.To, AcrossGap: c.AcrossGap},
			fmt.Sprintf("%s: DNS answer changed from %s to %s at %s (%s)", s.key, report.Addrs(c.From), report.Addrs(c.To), report.Clock(c.At), report.Plusminus(c.Earliest, c.Latest)))
	}
	r.last, r.have, r.lastLo, r.gapSince = set, true, lo, false
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
