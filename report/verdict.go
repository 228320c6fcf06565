package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// Outcomes of a switchover (Verdict.Outcome).
const (
	OutcomeSwitchedOver = "switched_over"
	OutcomeRolledBack   = "rolled_back"
	OutcomeNone         = "no_switchover"
)

// Verdict is what a switchover did to one target, in the words a DBA puts
// into a change ticket: the outcome, what new connections (fresh streams)
// and existing ones (pooled streams) went through, the read-only stretch,
// the DNS change and the replication lag. Every rendering starts with it,
// and `dbprobe report --format summary` prints nothing else.
//
// A pooled connection that stays on the old server after the target moved
// is not downtime of the switchover: it is its own finding (Stale), and the
// downtime figures here leave its stretch out.
type Verdict struct {
	Target  string `json:"target"`
	Outcome string `json:"outcome"`
	// Cutover is the switch (for a rollback: the move back), as the
	// earliest stream saw it; null when there was none.
	Cutover *Moment `json:"cutover"`
	// FromServer and ToServer name the servers before and after (display
	// names, see ServerName).
	FromServer string `json:"from_server,omitempty"`
	ToServer   string `json:"to_server,omitempty"`
	// SwitchedAt and SwitchedTo are, for a rollback, the switch that was
	// rolled back (when a stream saw it).
	SwitchedAt *Moment `json:"switched_at,omitempty"`
	SwitchedTo string  `json:"switched_to,omitempty"`
	// New is what new connections (fresh streams) saw, Existing what
	// pooled connections saw; null when no stream probed that way. With
	// several observers, the worst of them.
	New      *Connections `json:"new_connections"`
	Existing *Connections `json:"existing_connections"`
	// ReadOnlySeconds is how long the old server refused writes, as new
	// connections (else pooled ones) saw it; null when never.
	ReadOnlySeconds *float64 `json:"read_only_seconds"`
	// DNSChange is the first change of the endpoint's DNS answer.
	DNSChange *time.Time `json:"dns_change"`
	// ReplicationLagSeconds is the largest replication lag to green
	// measured, at ReplicationLagAt; null when not measured.
	ReplicationLagSeconds *float64   `json:"replication_lag_seconds"`
	ReplicationLagAt      *time.Time `json:"replication_lag_at"`
	// Observers lists what each observer saw, when more than one probed
	// the target; Disagreements says where they differ by more than one
	// probe interval.
	Observers     []ObserverView `json:"observers,omitempty"`
	Disagreements []string       `json:"disagreements,omitempty"`
	// ServerNames maps each server's identity to the name the report
	// gives it (its role where known, else hostname:port (server_id)).
	ServerNames map[string]string `json:"server_names"`
	// Text is the verdict as one paragraph, as every format prints it.
	Text string `json:"text"`
}

// Moment is when a change happened: between Earliest and Latest, At
// their midpoint, as the stream Mode of Observer saw it first.
type Moment struct {
	At       time.Time `json:"at"`
	Earliest time.Time `json:"earliest"`
	Latest   time.Time `json:"latest"`
	Observer string    `json:"observer"`
	Mode     string    `json:"mode"`
}

// Connections is what one kind of connection saw of a switchover.
type Connections struct {
	// Read and Write are the downtime outside stale stretches; Write is
	// null when writes were not probed.
	Read  Down  `json:"read"`
	Write *Down `json:"write"`
	// Stale is the time pooled connections stayed on a server the target
	// had moved away from, with the writes that failed or, worse, were
	// accepted there; null when none did.
	Stale *StaleSummary `json:"stale"`
}

// Down is a downtime and its bounds.
type Down struct {
	Seconds    float64  `json:"seconds"`
	MinSeconds float64  `json:"min_seconds"`
	MaxSeconds *float64 `json:"max_seconds"` // null when unbounded
	Windows    int      `json:"windows"`
}

// StaleSummary adds up the stale stretches of a stream.
type StaleSummary struct {
	Seconds      float64 `json:"seconds"`
	On           string  `json:"on"` // display name of the old server
	FailedWrites int64   `json:"failed_writes"`
	OKWrites     int64   `json:"accepted_writes"`
	Open         bool    `json:"open"` // still stale at the end of the report
}

// ObserverView is one observer's view of a target, for comparing
// observers.
type ObserverView struct {
	Observer string  `json:"observer"`
	Cutover  *Moment `json:"cutover"`
	// NewWriteSeconds and NewReadSeconds are its fresh streams' downtime.
	NewReadSeconds  *float64 `json:"new_read_seconds"`
	NewWriteSeconds *float64 `json:"new_write_seconds"`
	// IntervalSeconds is its probe interval, as its probes were spaced.
	IntervalSeconds float64 `json:"interval_seconds"`
}

// Verdicts returns the verdict of every target of rep, in the report's
// order of targets.
func Verdicts(rep *Report) []Verdict {
	tf := timeFormat(rep)
	out := make([]Verdict, 0, len(rep.Targets))
	for i := range rep.Targets {
		out = append(out, verdictOf(rep, &rep.Targets[i], tf))
	}
	return out
}

func verdictOf(rep *Report, tg *Target, tf func(time.Time) string) Verdict {
	v := Verdict{Target: tg.Name, Outcome: OutcomeNone}
	var fresh, pooled []*Stream
	for i := range rep.Streams {
		s := &rep.Streams[i]
		switch {
		case s.Target != tg.Name:
		case s.Mode == event.ModePooled:
			pooled = append(pooled, s)
		default:
			fresh = append(fresh, s)
		}
	}
	// The outcome comes from new connections: a pooled connection moves
	// when it is killed, not when the target does.
	deciders := fresh
	if len(deciders) == 0 {
		deciders = pooled
	}
	names := serverNames(tg)
	v.ServerNames = map[string]string{}
	for i := range tg.Servers {
		v.ServerNames[tg.Servers[i].Identity] = names.ofSeen(&tg.Servers[i])
	}
	var cut, first *Cutover
	v.Outcome, cut, first = outcome(tg, deciders)
	if first != nil && v.Outcome == OutcomeRolledBack {
		v.SwitchedTo = names.of(first.To)
		v.SwitchedAt = &Moment{At: first.At, Earliest: first.Earliest, Latest: first.Latest, Observer: first.observer, Mode: first.Mode}
	}
	if cut != nil {
		v.FromServer, v.ToServer = names.of(cut.From), names.of(cut.To)
		v.Cutover = &Moment{At: cut.At, Earliest: cut.Earliest, Latest: cut.Latest, Observer: cut.observer, Mode: cut.Mode}
	}
	v.New = connections(fresh, names)
	v.Existing = connections(pooled, names)
	for _, s := range append(slices.Clone(fresh), pooled...) {
		if len(s.ReadOnly) == 0 {
			continue
		}
		var ro float64
		for _, r := range s.ReadOnly {
			end := r.Last
			if r.End != nil {
				end = *r.End
			}
			ro += end.Sub(r.Start).Seconds()
		}
		v.ReadOnlySeconds = &ro
		break
	}
	for _, s := range append(slices.Clone(fresh), pooled...) {
		if len(s.DNSChanges) > 0 && (v.DNSChange == nil || s.DNSChanges[0].At.Before(*v.DNSChange)) {
			v.DNSChange = ptrTo(s.DNSChanges[0].At)
		}
		if r := s.Replication; r != nil && r.Samples > 0 && (v.ReplicationLagSeconds == nil || r.MaxSeconds > *v.ReplicationLagSeconds) {
			v.ReplicationLagSeconds, v.ReplicationLagAt = ptrTo(r.MaxSeconds), ptrTo(r.MaxAt)
		}
	}
	v.Observers, v.Disagreements = compareObservers(fresh, pooled, tf)
	v.Text = verdictText(&v, tf)
	return v
}

// outcome decides what the switchover did from the Blue/Green phases and
// the cutovers of the deciding streams.
func outcome(tg *Target, streams []*Stream) (outcome string, cut, first *Cutover) {
	var back *Cutover
	for _, s := range streams {
		for i := range s.Cutovers {
			c := s.Cutovers[i]
			c.Mode, c.observer = s.Mode, s.Observer
			if first == nil || c.At.Before(first.At) {
				first = &c
			}
			if c.Rollback && (back == nil || c.At.Before(back.At)) {
				back = &c
			}
		}
	}
	for _, p := range tg.BlueGreen {
		if p.Rollback {
			return OutcomeRolledBack, back, first
		}
	}
	if back != nil {
		return OutcomeRolledBack, back, first
	}
	if first != nil {
		return OutcomeSwitchedOver, first, first
	}
	return OutcomeNone, nil, nil
}

// connections is the worst of streams of one kind; nil when none.
func connections(streams []*Stream, names serverNamer) *Connections {
	if len(streams) == 0 {
		return nil
	}
	c := &Connections{}
	for _, s := range streams {
		if d := DownOutsideStale(&s.Read, s.Stale); d.Seconds > c.Read.Seconds || c.Read.Windows == 0 && d.Windows > 0 {
			c.Read = d
		}
		if s.Write.Probed {
			d := DownOutsideStale(&s.Write, s.Stale)
			if c.Write == nil || d.Seconds > c.Write.Seconds {
				c.Write = &d
			}
		}
		if len(s.Stale) == 0 {
			continue
		}
		st := &StaleSummary{On: names.of(s.Stale[0].Server)}
		for _, x := range s.Stale {
			st.Seconds += x.DurationSeconds
			st.FailedWrites += x.FailedWrites
			st.OKWrites += x.OKWrites
			st.Open = st.Open || x.End == nil
		}
		// The worst stale stream is the one that wrote to the old server,
		// then the longest.
		if c.Stale == nil || (st.OKWrites > 0) != (c.Stale.OKWrites > 0) && st.OKWrites > 0 ||
			(st.OKWrites > 0) == (c.Stale.OKWrites > 0) && st.Seconds > c.Stale.Seconds {
			c.Stale = st
		}
	}
	return c
}

// DownOutsideStale is a signal's downtime without the parts of its windows
// that fall into the stream's stale stretches: a connection stuck on the
// old server is its own finding, not downtime of the switchover. The
// detector's per-target figures and the verdict both count this way.
func DownOutsideStale(sig *Signal, stale []Stale) Down {
	d := Down{MaxSeconds: ptrTo(0.0)}
	for _, w := range sig.Windows {
		end := w.EndEarliest // still open: down at least until then
		if w.End != nil {
			end = *w.End
		}
		var overlap float64
		for _, st := range stale {
			stEnd := st.Last
			if st.End != nil {
				stEnd = *st.End
			}
			from, to := maxTime(w.Start, st.Start), minTime(end, stEnd)
			if to.After(from) {
				overlap += to.Sub(from).Seconds()
			}
		}
		if overlap > 0 && overlap >= end.Sub(w.Start).Seconds() {
			continue // wholly stale
		}
		d.Windows++
		d.Seconds += max(0, w.DurationSeconds-overlap)
		d.MinSeconds += max(0, w.MinSeconds-overlap)
		if w.MaxSeconds == nil || d.MaxSeconds == nil {
			d.MaxSeconds = nil
		} else {
			*d.MaxSeconds += max(0, *w.MaxSeconds-overlap)
		}
	}
	return d
}

// compareObservers lists each observer's view when more than one probed
// the target, and says where they disagree by more than one probe
// interval.
func compareObservers(fresh, pooled []*Stream, tf func(time.Time) string) ([]ObserverView, []string) {
	byObs := map[string]*ObserverView{}
	var order []string
	for _, s := range append(slices.Clone(fresh), pooled...) {
		o := byObs[s.Observer]
		if o == nil {
			o = &ObserverView{Observer: s.Observer}
			byObs[s.Observer] = o
			order = append(order, s.Observer)
		}
		o.IntervalSeconds = max(o.IntervalSeconds, interval(s))
		if s.Mode == event.ModePooled {
			continue
		}
		if len(s.Cutovers) > 0 && (o.Cutover == nil || s.Cutovers[0].At.Before(o.Cutover.At)) {
			c := s.Cutovers[0]
			o.Cutover = &Moment{At: c.At, Earliest: c.Earliest, Latest: c.Latest, Observer: s.Observer, Mode: s.Mode}
		}
		r := DownOutsideStale(&s.Read, s.Stale).Seconds
		if o.NewReadSeconds == nil || r > *o.NewReadSeconds {
			o.NewReadSeconds = &r
		}
		if s.Write.Probed {
			w := DownOutsideStale(&s.Write, s.Stale).Seconds
			if o.NewWriteSeconds == nil || w > *o.NewWriteSeconds {
				o.NewWriteSeconds = &w
			}
		}
	}
	if len(order) < 2 {
		return nil, nil
	}
	slices.Sort(order)
	views := make([]ObserverView, len(order))
	var step float64
	for i, o := range order {
		views[i] = *byObs[o]
		step = max(step, views[i].IntervalSeconds)
	}
	var dis []string
	// Cutover instants.
	var seen, missed []string
	lo, hi := -1, -1
	for i := range views {
		c := views[i].Cutover
		if c == nil {
			missed = append(missed, views[i].Observer)
			continue
		}
		seen = append(seen, views[i].Observer)
		if lo < 0 || c.At.Before(views[lo].Cutover.At) {
			lo = i
		}
		if hi < 0 || c.At.After(views[hi].Cutover.At) {
			hi = i
		}
	}
	if len(seen) > 0 && len(missed) > 0 {
		dis = append(dis, fmt.Sprintf("%s saw the cutover, %s did not", strings.Join(seen, ", "), strings.Join(missed, ", ")))
	}
	if lo >= 0 && lo != hi {
		if d := views[hi].Cutover.At.Sub(views[lo].Cutover.At).Seconds(); d > step {
			dis = append(dis, fmt.Sprintf("%s saw the cutover at %s, %s at %s: %s apart, more than one probe interval (%s)",
				views[lo].Observer, tf(views[lo].Cutover.At), views[hi].Observer, tf(views[hi].Cutover.At), Seconds(d), Seconds(step)))
		}
	}
	for _, sig := range []struct {
		name string
		get  func(*ObserverView) *float64
	}{
		{"reads", func(o *ObserverView) *float64 { return o.NewReadSeconds }},
		{"writes", func(o *ObserverView) *float64 { return o.NewWriteSeconds }},
	} {
		lo, hi := -1, -1
		for i := range views {
			x := sig.get(&views[i])
			if x == nil {
				continue
			}
			if lo < 0 || *x < *sig.get(&views[lo]) {
				lo = i
			}
			if hi < 0 || *x > *sig.get(&views[hi]) {
				hi = i
			}
		}
		if lo < 0 || lo == hi {
			continue
		}
		if d := *sig.get(&views[hi]) - *sig.get(&views[lo]); d > step {
			dis = append(dis, fmt.Sprintf("new connections' %s were down %s for %s but %s for %s",
				sig.name, Seconds(*sig.get(&views[hi])), views[hi].Observer, Seconds(*sig.get(&views[lo])), views[lo].Observer))
		}
	}
	return views, dis
}

// interval estimates a stream's probe interval from its probes' spacing.
func interval(s *Stream) float64 {
	if s.From == nil || s.To == nil {
		return 0
	}
	ticks := s.Probes
	for _, g := range s.Gaps {
		ticks += g.Ticks
	}
	if ticks < 2 {
		return 0
	}
	return s.To.Sub(*s.From).Seconds() / float64(ticks-1)
}

// verdictText words v as one paragraph.
func verdictText(v *Verdict, tf func(time.Time) string) string {
	var b strings.Builder
	b.WriteString(v.Target + ": ")
	switch v.Outcome {
	case OutcomeSwitchedOver:
		c := v.Cutover
		fmt.Fprintf(&b, "switched over at %s %s", tf(c.At), Plusminus(c.Earliest, c.Latest))
		if v.FromServer != "" || v.ToServer != "" {
			fmt.Fprintf(&b, " from %s to %s", orUnknown(v.FromServer), orUnknown(v.ToServer))
		}
		b.WriteString(".")
	case OutcomeRolledBack:
		b.WriteString("ROLLED BACK")
		if c := v.SwitchedAt; c != nil {
			fmt.Fprintf(&b, ": switched to %s at %s %s", orUnknown(v.SwitchedTo), tf(c.At), Plusminus(c.Earliest, c.Latest))
		}
		if c := v.Cutover; c != nil {
			if v.SwitchedAt != nil {
				b.WriteString(",")
			} else {
				b.WriteString(":")
			}
			fmt.Fprintf(&b, " back from %s to %s at %s %s", orUnknown(v.FromServer), orUnknown(v.ToServer), tf(c.At), Plusminus(c.Earliest, c.Latest))
		}
		b.WriteString(".")
	default:
		b.WriteString("no switchover seen.")
	}
	if c := v.New; c != nil {
		fmt.Fprintf(&b, " New connections: %s.", downText(c))
	}
	if c := v.Existing; c != nil {
		if c.Read.Windows == 0 && (c.Write == nil || c.Write.Windows == 0) {
			b.WriteString(" Existing connections: not interrupted")
		} else {
			fmt.Fprintf(&b, " Existing connections: interrupted, %s", downText(c))
		}
		if st := c.Stale; st != nil {
			open := ""
			if st.Open {
				open = " (still at the end of the report)"
			}
			if st.OKWrites > 0 {
				fmt.Fprintf(&b, "; then STUCK ON THE OLD SERVER %s for %s%s: %d WRITES ACCEPTED THERE, data went to the old server (%d failed)",
					st.On, Seconds(st.Seconds), open, st.OKWrites, st.FailedWrites)
			} else {
				fmt.Fprintf(&b, "; then stuck on the old server %s for %s%s with %d writes failed", st.On, Seconds(st.Seconds), open, st.FailedWrites)
			}
		}
		b.WriteString(".")
	}
	var more []string
	if v.ReadOnlySeconds != nil {
		more = append(more, "read-only for "+Seconds(*v.ReadOnlySeconds))
	}
	if v.DNSChange != nil {
		more = append(more, "DNS changed at "+tf(*v.DNSChange))
	}
	if v.ReplicationLagSeconds != nil {
		lag := "replication lag to green at most " + Seconds(*v.ReplicationLagSeconds)
		switch c := v.Cutover; {
		case c != nil && !v.ReplicationLagAt.After(c.At):
			lag = "replication lag to green before the switch at most " + Seconds(*v.ReplicationLagSeconds)
		case c != nil:
			lag += " (at " + tf(*v.ReplicationLagAt) + ", after the switch)"
		}
		more = append(more, lag)
	}
	if len(more) > 0 {
		s := strings.Join(more, ", ")
		fmt.Fprintf(&b, " %s%s.", strings.ToUpper(s[:1]), s[1:])
	}
	if len(v.Observers) > 1 {
		if len(v.Disagreements) == 0 {
			fmt.Fprintf(&b, " %d observers agree within one probe interval.", len(v.Observers))
		} else {
			fmt.Fprintf(&b, " OBSERVERS DISAGREE: %s.", strings.Join(v.Disagreements, "; "))
		}
	}
	return b.String()
}

func downText(c *Connections) string {
	s := "reads down " + downBounds(&c.Read)
	if c.Write != nil {
		s += ", writes down " + downBounds(c.Write)
	} else {
		s += ", writes not probed"
	}
	return s
}

// downBounds words a downtime with its bounds: "3.000 s (2.900 to
// 3.100)", "none". Unbounded, it still gives the estimate beside the
// minimum, where a window's Bounds gives the minimum alone: a downtime
// adds up windows, and the bounded ones have estimates of their own.
func downBounds(d *Down) string {
	switch {
	case d.Windows == 0:
		return "none"
	case d.MaxSeconds == nil:
		return fmt.Sprintf("%s (at least %s)", Seconds(d.Seconds), strconv.FormatFloat(d.MinSeconds, 'f', 3, 64))
	}
	return durationBounds(d.Seconds, d.MinSeconds, d.MaxSeconds)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown server"
	}
	return s
}

func ptrTo[T any](v T) *T { return &v }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
