package detector

import (
	"fmt"
	"slices"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// Stale detection needs every stream of a target: a pooled stream is stale
// only once some other stream has seen the target move. Streams are
// analysed independently and may run up to the reorder horizon apart, so
// each stream's probes wait in a queue until every stream of the target has
// had time to report the moves that precede them (twice the horizon), and
// are judged then.

// maxSwitches bounds the moves remembered per target. A target whose
// answering server changes on every probe (a load-balanced reader endpoint)
// is not one stale detection can say anything about.
const maxSwitches = 256

// maxStaleQueue bounds a stream's queue whatever the horizon.
const maxStaleQueue = 1 << 15

// switchRec is a move of the target seen by one of its streams: a cutover
// (from/to identities) or a DNS change (fromSet/toSet answers).
type switchRec struct {
	earliest       time.Time // the move's bracket: it happened in [earliest, latest]
	latest         time.Time // first probe that saw the new side
	dns            bool
	from, to       string
	fromSet, toSet []string
}

// staleEntry is one probe (or gap) waiting for judgement.
type staleEntry struct {
	t    time.Time
	tick int64
	// servedLo and servedHi bracket the instant the answering server
	// served the probe's query.
	servedLo, servedHi time.Time
	gap                bool
	server             *event.Server // nil: no answer
	ip                 string
	writeSeen          bool
	writeOK            bool
}

// queued is a staleEntry as it waits in the queue, its instants held as in
// served: a stream queues twice the reorder horizon of probes.
type queued struct {
	tSec, loSec, hiSec    int64
	tNsec, loNsec, hiNsec int32
	tick                  int64
	server                *event.Server
	ip                    string
	gap                   bool
	writeSeen, writeOK    bool
}

func queue(e *staleEntry) queued {
	q := queued{tick: e.tick, server: e.server, ip: e.ip, gap: e.gap, writeSeen: e.writeSeen, writeOK: e.writeOK}
	q.tSec, q.tNsec = unixParts(e.t)
	q.loSec, q.loNsec = unixParts(e.servedLo)
	q.hiSec, q.hiNsec = unixParts(e.servedHi)
	return q
}

func (q *queued) entry() staleEntry {
	return staleEntry{t: fromUnix(q.tSec, q.tNsec), tick: q.tick, servedLo: fromUnix(q.loSec, q.loNsec), servedHi: fromUnix(q.hiSec, q.hiNsec),
		gap: q.gap, server: q.server, ip: q.ip, writeSeen: q.writeSeen, writeOK: q.writeOK}
}

type staleTracker struct {
	// queue is a ring of the n entries waiting, the oldest at head: it
	// holds what is pending, rounded up to a power of two, and no more.
	queue   []queued
	head, n int
	// lastIP is the address of the latest entry, which the next ones share
	// rather than each keeping its event's copy.
	lastIP string
	cur    *report.Stale
	list   capped[report.Stale]
	// other is the served interval of the latest answer not judged
	// stale: if it came from elsewhere, the stream was not on the old
	// server before its start.
	other      staleEntry
	otherKnown bool
	// closedLast: the list's last episode is the last one closed; a stale
	// answer observed after it can still belong to it (see joinClosed).
	closedLast bool
	// ended is the end_earliest of the last episode closed: the next
	// begins after it.
	ended time.Time
}

func (r *staleTracker) push(e staleEntry) {
	if r.n == len(r.queue) {
		grown := make([]queued, max(8, 2*len(r.queue)))
		k := copy(grown, r.queue[r.head:])
		copy(grown[k:], r.queue[:r.head])
		r.queue, r.head = grown, 0
	}
	if e.ip == r.lastIP {
		e.ip = r.lastIP
	} else {
		r.lastIP = e.ip
	}
	r.queue[(r.head+r.n)%len(r.queue)] = queue(&e)
	r.n++
}

func (r *staleTracker) pending() bool { return r.n > 0 }

// judge evaluates queued entries up to horizon (all of them if force).
func (r *staleTracker) judge(s *stream, horizon time.Time, force bool) {
	for r.n > 0 {
		q := &r.queue[r.head]
		e := q.entry()
		if !force && e.t.After(horizon) && r.n <= maxStaleQueue {
			return
		}
		*q = queued{}
		r.head, r.n = (r.head+1)%len(r.queue), r.n-1
		r.apply(s, &e)
	}
	r.head = 0
}

func (r *staleTracker) apply(s *stream, e *staleEntry) {
	if e.gap {
		// Unknown: the stream may have stayed on the old server
		// throughout; the next answer says whether it still is.
		return
	}
	if e.server == nil {
		// No answer: nothing says which server the stream is on, so the
		// probe (and its failed write) is not counted to the episode,
		// whose probe and write counts stay consistent.
		return
	}
	reason, since, moved := s.tgt.staleReason(e.server.Identity, e.ip, e.t)
	if reason == "" {
		// Only an answer from elsewhere that began after an instant
		// the stream was on the old server ends the episode: one served
		// earlier (its probe hung, and completed after the stale ones)
		// came before the episode, or during its start.
		if r.cur != nil && !e.servedLo.Before(r.cur.StartLatest) {
			r.close(s, e, e.tick, report.EndsRecovered)
		}
		r.other, r.otherKnown = *e, true
		return
	}
	if r.cur == nil && r.joinClosed(e) {
		return
	}
	if r.cur == nil {
		// Stale from when the target moved with the stream on the old
		// server: not before the move, nor before the last episode's
		// end, nor before an answer from elsewhere served before this
		// one (one whose query overlaps this one's may have come after
		// it); by the first stale probe's query.
		latest := e.servedHi
		earliest := minTime(later(moved, r.ended), latest)
		if o := r.other; r.otherKnown && o.server.Identity != e.server.Identity && o.servedLo.After(earliest) && !o.servedHi.After(e.servedLo) {
			earliest = minTime(o.servedLo, latest)
		}
		start := mid(earliest, latest)
		r.cur = &report.Stale{Edges: report.Edges{Start: start, StartEarliest: ptr(earliest), StartLatest: latest}, Since: since, Server: e.server,
			Reason: reason, Ends: report.EndsOpen}
		s.emit(event.ActionStaleStarted, e.tick, start, start, time.Time{},
			&event.Finding{Start: ptr(start), StartEarliest: ptr(earliest), StartLatest: ptr(latest), Latest: ptr(since),
				Server: e.server, Reason: reason},
			fmt.Sprintf("%s still on the old %s after %s moved at %s", s.key, report.StaleOn(reason, e.server), s.key.Target, report.Clock(since)))
	}
	c := r.cur
	// The stream was on the old server at or after its query began,
	// and not before the episode did: a slow query can begin before
	// the move, and the probe itself began earlier still.
	c.Last = later(c.Last, later(e.servedLo, c.StartLatest))
	c.EndEarliest = later(c.EndEarliest, c.Last)
	count(c, e)
}

// count adds a stale probe and its write to the episode.
func count(c *report.Stale, e *staleEntry) {
	c.Probes++
	if e.writeSeen {
		if e.writeOK {
			c.OKWrites++
		} else {
			c.FailedWrites++
		}
	}
}

// joinClosed counts a stale answer observed after the episode it may
// belong to closed (probes overlap: it was served before the answer from
// elsewhere that closed the episode) to that episode. Its start may move
// earlier, not before the previous episode's end; its end stays the answer
// that closed it. The finding already emitted stays as it was; the report
// counts the probe.
func (r *staleTracker) joinClosed(e *staleEntry) bool {
	n := len(r.list.items)
	if !r.closedLast || n == 0 {
		return false
	}
	c := &r.list.items[n-1]
	if c.EndLatest == nil || !e.servedLo.Before(*c.EndLatest) {
		return false
	}
	var prev *report.Edges
	if n > 1 {
		prev = &r.list.items[n-2].Edges
	}
	startBy(&c.Edges, e.servedHi, prev)
	c.Start = c.StartLatest
	if c.StartEarliest != nil {
		c.Start = mid(*c.StartEarliest, c.StartLatest)
	}
	if eb := minTime(later(e.servedLo, c.StartLatest), *c.EndLatest); eb.After(c.EndEarliest) {
		c.EndEarliest = eb
		c.End = ptr(mid(c.EndEarliest, *c.EndLatest))
		c.Last = later(c.Last, eb)
	}
	r.ended = c.EndEarliest
	count(c, e)
	figureStale(c)
	return true
}

// close ends the open episode at the answer from elsewhere, by whose query
// the stream had left the old server (nil: the run stopped in it, its end
// is unknown).
func (r *staleTracker) close(s *stream, by *staleEntry, tick int64, ends string) {
	c := *r.cur
	r.cur = nil
	c.Ends = ends
	if by != nil {
		endBy(&c.Edges, by.servedHi)
	}
	figureStale(&c)
	r.closedLast = r.list.add(c)
	if !r.closedLast {
		s.omit("stale")
	}
	r.ended = c.EndEarliest
	s.emit(event.ActionStaleEnded, tick, c.EndEarliest, c.Start, c.EndEarliest,
		&event.Finding{Start: ptr(c.Start), StartEarliest: c.StartEarliest, StartLatest: ptr(c.StartLatest),
			End: c.End, EndEarliest: ptr(c.EndEarliest), EndLatest: c.EndLatest, Last: ptr(c.Last), Latest: ptr(c.Since),
			Duration: ptr(c.DurationSeconds), Min: ptr(c.MinSeconds), Max: c.MaxSeconds,
			Probes: c.Probes, Writes: ptr(c.FailedWrites), OKWrites: ptr(c.OKWrites), Server: c.Server, Reason: c.Reason, Ends: ends},
		fmt.Sprintf("%s stayed on the old %s for %s (%d probes, %d writes failed, %d writes accepted)",
			s.key, report.StaleOn(c.Reason, c.Server), report.Seconds(c.DurationSeconds), c.Probes, c.FailedWrites, c.OKWrites))
}

func (r *staleTracker) snapshot() []report.Stale {
	out := r.list.snapshot()
	if r.cur != nil && !r.list.full() {
		c := *r.cur
		figureStale(&c)
		out = append(out, c)
	}
	return out
}

// figureStale sets an episode's durations from its brackets; while open,
// it lasted at least until its last stale probe was served.
func figureStale(c *report.Stale) {
	end := c.EndEarliest
	c.MaxSeconds = nil
	if c.End != nil {
		end = *c.End
		if c.StartEarliest != nil && c.EndLatest != nil {
			c.MaxSeconds = ptr(seconds(c.EndLatest.Sub(*c.StartEarliest)))
		}
	}
	c.DurationSeconds = seconds(max(0, end.Sub(c.Start)))
	c.MinSeconds = seconds(max(0, c.EndEarliest.Sub(c.StartLatest)))
}

// target holds what the streams of one target share.
type target struct {
	name    string
	streams []*stream
	newest  time.Time // latest analysis time of any of its streams
	// notable is when a stream of the target last saw something a finding
	// can come from (see stream.analyse); the others keep their
	// timeline's detail going meanwhile, for the target's detail figures.
	notable  time.Time
	switches []switchRec
	servers  []report.ServerSeen
	serverAt map[string]int
	phases   phaseTracker
	aws      capped[report.AWSEvent]
	// labels are those of the target's latest probe event.
	labels map[string]string
}

func newTarget(name string, listCap int) *target {
	return &target{name: name, serverAt: map[string]int{}, phases: phaseTracker{list: capped[report.Phase]{max: listCap}},
		aws: capped[report.AWSEvent]{max: listCap}}
}

func (t *target) advance(at time.Time) {
	if at.After(t.newest) {
		t.newest = at
	}
}

// answered records that srv answered a probe of the target at 'at'.
func (t *target) answered(srv *event.Server, at time.Time) {
	i, ok := t.serverAt[srv.Identity]
	if !ok {
		if len(t.servers) >= maxIdentities {
			return
		}
		i = len(t.servers)
		t.serverAt[srv.Identity] = i
		t.servers = append(t.servers, report.ServerSeen{Identity: srv.Identity, Hostname: srv.Hostname, Address: srv.Address,
			ServerID: clonePtr(srv.ServerID), Port: clonePtr(srv.Port), AuroraServerID: srv.AuroraServerID, FirstSeen: at})
	}
	s := &t.servers[i]
	s.Probes++
	if srv.Role != "" && !slices.Contains(s.Roles, srv.Role) {
		s.Roles = append(s.Roles, srv.Role)
	}
	if at.After(s.LastSeen) {
		s.LastSeen = at
	}
}

// register records a move. A move that repeats the latest one before it
// (another stream seeing the same cutover later) adds nothing.
func (t *target) register(w switchRec) {
	i, _ := slices.BinarySearchFunc(t.switches, w.latest, func(x switchRec, at time.Time) int {
		if x.latest.After(at) {
			return 1
		}
		return -1 // equal times sort before: the new one goes after them
	})
	for j := i - 1; j >= 0; j-- {
		p := t.switches[j]
		if p.dns != w.dns {
			continue
		}
		if p.from == w.from && p.to == w.to && slices.Equal(p.fromSet, w.fromSet) && slices.Equal(p.toSet, w.toSet) {
			return
		}
		break
	}
	if len(t.switches) >= maxSwitches {
		return
	}
	t.switches = slices.Insert(t.switches, i, w)
}

// staleReason says whether a probe answered at 'at' by identity over ip is
// stale: the server (or address) is one the target moved away from by then
// and not the one it moved to last. since is when that move was seen.
func (t *target) staleReason(identity, ip string, at time.Time) (reason string, since, moved time.Time) {
	var (
		curID              string
		haveID, oldID      bool
		curSet             []string
		haveSet, oldIP     bool
		sinceID, sinceAddr time.Time
		movedID, movedAddr time.Time
	)
	for _, w := range t.switches {
		if w.latest.After(at) {
			break
		}
		if w.dns {
			curSet, haveSet = w.toSet, true
			if ip != "" && slices.Contains(w.fromSet, ip) {
				oldIP, sinceAddr, movedAddr = true, w.latest, w.earliest
			}
			continue
		}
		curID, haveID = w.to, true
		if w.from == identity {
			oldID, sinceID, movedID = true, w.latest, w.earliest
		}
	}
	staleID := haveID && oldID && identity != curID
	staleIP := haveSet && oldIP && !slices.Contains(curSet, ip)
	switch {
	case staleID:
		return report.StaleServer, sinceID, movedID
	case staleIP:
		return report.StaleAddress, sinceAddr, movedAddr
	}
	return "", time.Time{}, time.Time{}
}

// judgeStale judges every stream's queued probes that all streams of the
// target have had time to catch up with.
func (t *target) judgeStale(horizon time.Duration, force bool) {
	limit := t.newest.Add(-2 * horizon)
	for _, s := range t.streams {
		if s.stale.pending() {
			s.stale.judge(s, limit, force)
		}
	}
}

// awsEvent records what AWS reported, kept in the order of AWS's dates
// (events of several sources arrive interleaved).
func (t *target) awsEvent(a *event.AWSEvent) {
	e := report.AWSEvent{At: a.Date.UTC(), Source: a.SourceType + " " + a.SourceID, Message: a.Message}
	if t.aws.full() {
		return
	}
	i, _ := slices.BinarySearchFunc(t.aws.items, e.At, func(x report.AWSEvent, at time.Time) int {
		if x.At.After(at) {
			return 1
		}
		return -1
	})
	t.aws.items = slices.Insert(t.aws.items, i, e)
}
