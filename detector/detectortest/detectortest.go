// Package detectortest builds synthetic probe event streams, shaped like
// the probe loop's, for tests of the detector and of the tools around it
// (reports, benchmarks): a Stream is scripted probe by probe ("3 probes up
// on server A, 5 failing with connect_refused, a gap of 2 ticks, ...") and
// yields the events the probe loop would have emitted.
package detectortest

import (
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// Stream scripts the probes of one stream. The zero latency is 2 ms.
type Stream struct {
	RunID    string
	Observer string
	Target   string
	Mode     string
	// Start is the scheduled time of the first tick; Interval the period.
	Start    time.Time
	Interval time.Duration
	// Writes makes every probe carry a write outcome.
	Writes bool
	// Domain is the endpoint name probes resolve (with DNS set).
	Domain string
	// Jitter varies each probe's latency deterministically by up to this
	// fraction either way.
	Jitter float64

	n       int64 // probes scripted so far (ticks used)
	srv     *event.Server
	answers []string
	dnsSet  bool
	latency float64
	lag     time.Duration
	seq     uint64
	events  []*event.Event
}

// NewStream starts a stream script.
func NewStream(runID, observer, target, mode string, start time.Time, interval time.Duration) *Stream {
	return &Stream{RunID: runID, Observer: observer, Target: target, Mode: mode, Start: start.UTC(), Interval: interval,
		Domain: target + ".db.example", latency: 2, lag: 100 * time.Microsecond}
}

// NewServer returns a writable server with identity id answering on addr
// ("ip:port").
func NewServer(id, addr string) *event.Server {
	host, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.ParseInt(portText, 10, 64)
	var sid int64
	for _, c := range id {
		sid = sid*31 + int64(c)
	}
	sid = (sid%100000+100000)%100000 + 1 // the hash may overflow to a negative
	f := false
	return &event.Server{
		Identity:       id,
		Hostname:       "db-" + host,
		ServerID:       &sid,
		Port:           &port,
		Version:        "10.11.19-MariaDB",
		ReadOnly:       &f,
		SuperReadOnly:  &f,
		InnoDBReadOnly: &f,
		Address:        addr,
	}
}

// ReadOnly returns a copy of srv that reports read_only=ON.
func ReadOnly(srv *event.Server) *event.Server {
	c := *srv
	t := true
	c.ReadOnly = &t
	return &c
}

// Tick is the tick number of the i-th scripted probe (i from 0). Ticks count
// whole intervals since the Unix epoch, as the probe loop's do.
func (s *Stream) Tick(i int64) int64 { return s.Start.UnixNano()/int64(s.Interval) + i }

// Scheduled is the scheduled time of the i-th scripted probe.
func (s *Stream) Scheduled(i int64) time.Time { return s.Start.Add(time.Duration(i) * s.Interval) }

// Server sets the server that answers the following probes.
func (s *Stream) Server(srv *event.Server) *Stream { s.srv = srv; return s }

// DNS sets the answers the following probes resolve; no arguments means
// the probes do not resolve (pooled connections).
func (s *Stream) DNS(answers ...string) *Stream {
	s.answers, s.dnsSet = answers, len(answers) > 0
	return s
}

// Latency sets the total latency in ms of the following probes.
func (s *Stream) Latency(ms float64) *Stream { s.latency = ms; return s }

// Up scripts n probes answered by the current server, reads and writes ok.
func (s *Stream) Up(n int) *Stream {
	for range n {
		s.add(s.srv, true, true, "", "")
	}
	return s
}

// Down scripts n probes that got no answer, failing with class in phase
// connect.
func (s *Stream) Down(n int, class string) *Stream {
	for range n {
		s.add(nil, false, false, class, event.PhaseConnect)
	}
	return s
}

// WriteFail scripts n probes answered by the current server whose write
// failed with class.
func (s *Stream) WriteFail(n int, class string) *Stream {
	for range n {
		s.add(s.srv, true, false, class, event.PhaseWrite)
	}
	return s
}

// Gap scripts n ticks the probe loop could not run: one gap event.
func (s *Stream) Gap(n int) *Stream {
	if n <= 0 {
		return s
	}
	first := s.n
	s.n += int64(n)
	from, to := s.Scheduled(first), s.Scheduled(s.n)
	ev := s.base(first, from, to)
	ev.Event.ID += "/gap"
	ev.Event.Action = event.ActionGap
	ev.Event.Type = []string{"info"}
	ev.Event.Outcome = event.OutcomeUnknown
	ev.Event.End = to
	ev.DBProbe.Gap = &event.Gap{FirstTick: s.Tick(first), LastTick: s.Tick(s.n - 1), Ticks: int64(n), From: from, To: to}
	s.events = append(s.events, ev)
	return s
}

// Skip scripts n ticks that left no event at all (dbprobe was not running).
func (s *Stream) Skip(n int) *Stream { s.n += int64(n); return s }

// Events returns the scripted events in tick order.
func (s *Stream) Events() []*event.Event { return slices.Clone(s.events) }

// Len is the number of ticks scripted so far.
func (s *Stream) Len() int64 { return s.n }

func (s *Stream) base(i int64, scheduled, started time.Time) *event.Event {
	s.seq++
	return &event.Event{
		Timestamp: started,
		Event: event.Meta{
			ID:       event.ProbeID(s.RunID, s.Observer, s.Target, s.Mode, s.Tick(i)),
			Kind:     event.KindEvent,
			Category: []string{"database"},
			Type:     []string{"access"},
			Dataset:  event.DatasetProbe,
			Action:   event.ActionProbe,
			Start:    started,
		},
		Observer: event.Observer{Name: s.Observer, Type: "poller", Product: "dbprobe"},
		DBProbe: event.DBProbe{
			Schema:    event.Schema,
			RunID:     s.RunID,
			Target:    s.Target,
			Mode:      s.Mode,
			Tick:      s.Tick(i),
			Scheduled: scheduled,
		},
	}
}

func (s *Stream) add(srv *event.Server, readOK, writeOK bool, class, phase string) {
	i := s.n
	s.n++
	sched := s.Scheduled(i)
	start := sched.Add(s.lag)
	ev := s.base(i, sched, start)
	lat := s.latency
	if s.Jitter > 0 {
		// A fixed hash of the tick: the same script always yields the
		// same latencies.
		h := float64(uint32(s.Tick(i))*2654435761%1000) / 1000
		lat *= 1 + s.Jitter*(2*h-1)
	}
	ev.Event.End = start.Add(time.Duration(lat * float64(time.Millisecond)))
	ev.Event.Duration = int64(lat * float64(time.Millisecond))
	lag := float64(s.lag) / float64(time.Millisecond)
	ev.DBProbe.LagMS = &lag
	ev.DBProbe.Latency = &event.Latency{Total: lat}
	ev.Destination = &event.Destination{Domain: s.Domain}
	if s.dnsSet {
		ev.DBProbe.DNS = &event.DNS{Name: s.Domain, Answers: slices.Clone(s.answers)}
	}
	if srv != nil {
		c := *srv
		ev.DBProbe.Server = &c
		host, port, _ := net.SplitHostPort(srv.Address)
		p, _ := strconv.Atoi(port)
		ev.Destination.Address, ev.Destination.IP, ev.Destination.Port = srv.Address, host, p
	}
	// The phases that ran: a failure took the whole latency in its phase,
	// after a read that succeeded when it is the write that failed.
	ms := func(v float64) *float64 { return &v }
	l := ev.DBProbe.Latency
	switch {
	case readOK && s.Writes:
		l.Query, l.Write = ms(lat/2), ms(lat/2)
	case readOK:
		l.Query = ms(lat)
	case phase == event.PhaseDNS:
		l.DNS = ms(lat)
	default:
		l.Connect = ms(lat)
	}
	ev.DBProbe.Read = &event.Outcome{OK: readOK}
	if s.Writes {
		ev.DBProbe.Write = &event.Outcome{OK: readOK && writeOK}
	}
	if class != "" {
		ev.Event.Outcome = event.OutcomeFailure
		ev.DBProbe.Failure = &event.Failure{Class: class, Phase: phase}
		ev.Error = &event.Error{Type: class, Message: "synthetic " + class}
	} else {
		ev.Event.Outcome = event.OutcomeSuccess
	}
	s.events = append(s.events, ev)
}

// ByCompletion merges event lists into the order the probe loop would emit
// them: by completion time (event.end), ties by start. Probes that overlap
// thus arrive out of tick order when a later one finished first.
func ByCompletion(lists ...[]*event.Event) []*event.Event {
	var out []*event.Event
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortStableFunc(out, func(a, b *event.Event) int {
		if c := a.Event.End.Compare(b.Event.End); c != 0 {
			return c
		}
		return a.Event.Start.Compare(b.Event.Start)
	})
	return out
}

// Take returns the events scripted since the last Take and forgets them,
// for scripts too long to hold in memory.
func (s *Stream) Take() []*event.Event {
	out := s.events
	s.events = nil
	return out
}

// Phase is a Blue/Green phase event as the probe loop's poller of
// mysql.rds_topology emits it.
func Phase(runID, observer, target string, at time.Time, phase string) *event.Event {
	at = at.UTC()
	return &event.Event{
		Timestamp: at,
		Event: event.Meta{ID: runID + "/" + observer + "/" + target + "/bluegreen/" + strconv.FormatInt(at.UnixNano(), 10),
			Kind: event.KindEvent, Dataset: event.DatasetProbe, Action: event.ActionBlueGreenStatus, Start: at, End: at},
		Observer: event.Observer{Name: observer, Type: "poller", Product: "dbprobe"},
		DBProbe: event.DBProbe{Schema: event.Schema, RunID: runID, Target: target,
			BlueGreen: &event.BlueGreen{Phase: phase}},
	}
}

// Switchover scripts a Blue/Green switchover of target "orders" as a fresh
// and a pooled stream with writes see it, steady probes before and after
// (steady >= 40):
//
//   - blue (A, 10.0.0.1) turns read-only: writes fail read_only for 5 probes;
//   - connections are refused (offline) for 10 probes, two of them hanging
//     1.2 s, so they arrive out of order;
//   - new connections still resolve blue for 15 probes (read-only);
//   - DNS flips to green (B, 10.0.0.2): fresh cuts over;
//   - the pooled connection, killed once, reconnects to blue and stays
//     there, its writes failing, until killed again 20 probes after the
//     cutover; later it misses 3 ticks (a gap).
//
// It also returns the Blue/Green phase events of the switchover.
func Switchover(runID, observer string, start time.Time, interval time.Duration, steady int) (fresh, pooled *Stream, phases []*event.Event) {
	blue := NewServer("uuid:3e11fa47-71ca-11e1-9e33-c80aa9429562", "10.0.0.1:3306")
	green := NewServer("uuid:8a94f357-aab4-11df-86ab-c80aa9429562", "10.0.0.2:3306")
	blue.Hostname, green.Hostname = "orders-blue", "orders-green"
	roBlue := ReadOnly(blue)

	fresh = NewStream(runID, observer, "orders", "fresh", start, interval)
	fresh.Writes, fresh.Jitter = true, 0.4
	fresh.Latency(3).Server(blue).DNS("10.0.0.1").Up(steady).
		Server(roBlue).WriteFail(5, "read_only").
		Latency(1).Down(4, "offline").Latency(1200).Down(2, "timeout").Latency(1).Down(4, "offline").
		Latency(3).WriteFail(15, "read_only").
		Server(green).DNS("10.0.0.2").Up(steady)

	pooled = NewStream(runID, observer, "orders", "pooled", start, interval)
	pooled.Writes, pooled.Jitter = true, 0.3
	rest := int(fresh.Len()) - (steady + 5 + 1 + 44 + 1 + 10 + 3)
	pooled.Latency(0.8).Server(blue).Up(steady).
		Server(roBlue).WriteFail(5, "read_only").Latency(1).Down(1, "conn_lost").
		Latency(0.8).WriteFail(44, "read_only").Latency(1).Down(1, "conn_lost").
		Latency(0.8).Server(green).Up(10).Gap(3).Up(rest)

	at := func(i int) time.Time { return fresh.Scheduled(int64(i)) }
	phases = []*event.Event{
		Phase(runID, observer, "orders", at(0), "CREATED"),
		Phase(runID, observer, "orders", at(steady-8), "PREPARATION"),
		Phase(runID, observer, "orders", at(steady), "IN_PROGRESS"),
		Phase(runID, observer, "orders", at(steady+14), "POST"),
		Phase(runID, observer, "orders", at(steady+38), "COMPLETED"),
	}
	return fresh, pooled, phases
}
