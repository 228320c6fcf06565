package lab

import (
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// DefaultSlack is added to one probe interval to make a boundary's
// tolerance. It covers the mechanics of measuring, not luck: the probe that
// straddles a change starts before it and sees it (early by up to one probe's
// duration: DNS, connect, two queries), and a probe can start late when the
// machine is busy (the event records when it actually started). On an idle
// machine both are a few milliseconds; on a loaded 2-core CI runner with the
// race detector, up to a couple of hundred.
const DefaultSlack = 250 * time.Millisecond

// CompareOptions tune Compare.
type CompareOptions struct {
	// Target is the report's target for the cluster endpoint; default
	// TargetName.
	Target string
	// Interval is the probe interval of the run (required).
	Interval time.Duration
	// Slack is added to every tolerance; default DefaultSlack.
	Slack time.Duration
	// PhasePoll is how often the Blue/Green poller reads mysql.rds_topology
	// before a switchover starts: the resolution of the first phase change
	// (PREPARATION). Default: Interval.
	PhasePoll time.Duration
	// ProbeTimeout is dbprobe's probe timeout in the run: in the proxy
	// scenario, a probe held longer fails. Default: ProbeTimeout(Interval).
	ProbeTimeout time.Duration
}

// Boundary is one instant dbprobe reports, beside the ground truth.
type Boundary struct {
	Name string `json:"name"`
	// Step is the ground-truth step the boundary is compared with.
	Step  string    `json:"step"`
	Truth time.Time `json:"truth"`
	// Reported is dbprobe's instant; nil when it reported none.
	Reported *time.Time `json:"reported"`
	// Error is Reported - Truth.
	Error     time.Duration `json:"error"`
	Tolerance time.Duration `json:"tolerance"`
	// Earliest and Latest are the bracket dbprobe reports around its
	// instant (null when it reports none, or only one side); InBounds says
	// whether the truth (the step, from its start to its end) lies within
	// it.
	Earliest *time.Time `json:"earliest,omitempty"`
	Latest   *time.Time `json:"latest,omitempty"`
	InBounds *bool      `json:"in_bounds,omitempty"`
	OK       bool       `json:"ok"`
	Note     string     `json:"note,omitempty"`
}

// boundsSlack is how far outside dbprobe's bracket the truth may lie and
// still count as within: clock reads around the lab's statements.
const boundsSlack = 5 * time.Millisecond

// Comparison is dbprobe's report beside the ground truth.
type Comparison struct {
	Boundaries []Boundary `json:"boundaries"`
	// Problems are findings that should not be there (an extra window, a
	// cutover in a rollback, a rollback phase in a switchover).
	Problems []string `json:"problems,omitempty"`
	// Stuck is how long the pooled stream was reported stuck on old blue
	// (zero when it was not).
	Stuck time.Duration `json:"stuck"`
	// Verdict is the report's verdict of the target, printed beside the
	// truth; TruthOutcome what the lab did (one of the Outcome constants).
	Verdict      *report.Verdict `json:"verdict,omitempty"`
	TruthOutcome string          `json:"truth_outcome"`
	t0           time.Time
	origin       string // what t0 is, for the table's legend
}

// OK reports whether every boundary is within its tolerance (or its truth
// within dbprobe's bracket) and there is no problem.
func (c *Comparison) OK() bool {
	if len(c.Problems) > 0 {
		return false
	}
	for _, b := range c.Boundaries {
		if !b.OK {
			return false
		}
	}
	return true
}

// Failures lists what is wrong, one line each.
func (c *Comparison) Failures() []string {
	var out []string
	for _, b := range c.Boundaries {
		if !b.OK {
			out = append(out, fmt.Sprintf("%s: %s", b.Name, b.describe()))
		}
	}
	return append(out, c.Problems...)
}

func (b *Boundary) describe() string {
	switch {
	case b.Reported == nil && b.Truth.IsZero():
		return "not reported, as expected"
	case b.Reported == nil:
		return "not reported"
	case b.Truth.IsZero():
		return fmt.Sprintf("reported at %s, but it did not happen", report.TimeOfDay(*b.Reported))
	}
	return fmt.Sprintf("error %s, tolerance ±%s", signed(b.Error), b.Tolerance)
}

// Compare puts the report of a run beside the truth of its switchover.
// truth must come from Run (it needs the probing_stopped step to judge how
// long the pooled stream stayed on old blue).
func Compare(truth *Truth, rep *report.Report, o CompareOptions) *Comparison {
	if o.Target == "" {
		o.Target = TargetName
	}
	if o.Slack == 0 {
		o.Slack = DefaultSlack
	}
	if o.PhasePoll < o.Interval {
		o.PhasePoll = o.Interval
	}
	if o.ProbeTimeout == 0 {
		o.ProbeTimeout = ProbeTimeout(o.Interval)
	}
	c := &Comparison{origin: "SWITCHOVER_INITIATED"}
	if len(truth.Steps) > 0 {
		c.t0 = truth.Steps[0].At
	}
	k := &comparer{c: c, truth: truth, o: o, tol: o.Interval + o.Slack, derived: map[string]time.Time{}}
	defer k.verdict(rep)
	if sc := truth.Scenario; sc != "" && sc != ScenarioBlueGreen {
		if len(truth.Steps) > 0 {
			c.origin = truth.Steps[0].Name
		}
		k.scenario(rep)
		return c
	}
	fresh := findStream(rep, o.Target, event.ModeFresh)
	pooled := findStream(rep, o.Target, event.ModePooled)
	if fresh == nil {
		c.Problems = append(c.Problems, "the report has no fresh stream for target "+o.Target)
		fresh = &report.Stream{}
	}
	switched, rolledBack := truth.Switched(), truth.RolledBack()
	end := StepDNSSwitched
	readEnd := StepLoginsAccepted
	if rolledBack {
		end, readEnd = StepRollbackBlueWritable, StepRollbackLoginsOK
	}
	if switched || rolledBack {
		k.window("fresh read window", fresh.Read.Windows, StepLoginsRefused, readEnd)
		writesStop := StepBlueReadOnly
		if !k.at(StepLockTaken).IsZero() {
			writesStop = StepLockTaken // writes wait on the lock from then on
		}
		k.window("fresh write window", fresh.Write.Windows, writesStop, end)
		k.readOnly(fresh)
	}
	blueIP, greenIP := hostOf(truth.Blue), hostOf(truth.Green)
	sameIP := blueIP == greenIP // the single-port fallback: the answer never changes
	switch {
	case switched:
		k.cutover(fresh.Cutovers)
		if sameIP {
			k.absent("DNS change (single-port lab: the answer never changes)", len(fresh.DNSChanges) > 0, dnsAt(fresh.DNSChanges))
		} else {
			k.dnsChange(fresh.DNSChanges, blueIP, greenIP)
		}
	case rolledBack:
		k.absent("cutover (rolled back)", len(fresh.Cutovers) > 0, cutAt(fresh.Cutovers))
		k.absent("DNS change (rolled back)", len(fresh.DNSChanges) > 0, dnsAt(fresh.DNSChanges))
	}
	k.phases(findTarget(rep, o.Target))
	if pooled == nil {
		c.Problems = append(c.Problems, "the report has no pooled stream for target "+o.Target)
	} else {
		k.stuck(pooled)
	}
	return c
}

type comparer struct {
	c     *Comparison
	truth *Truth
	o     CompareOptions
	tol   time.Duration
	// derived are instants that follow from the truth's steps and known
	// bounds rather than being a step, by name (see at).
	derived map[string]time.Time
}

// at is when step took effect: a truth step, or a derived instant.
func (k *comparer) at(step string) time.Time {
	if t, ok := k.derived[step]; ok {
		return t
	}
	return k.truth.At(step)
}

func (k *comparer) problem(format string, args ...any) {
	k.c.Problems = append(k.c.Problems, fmt.Sprintf(format, args...))
}

// add compares reported with the truth of step. A boundary of a truth
// stretch shorter than short may fall between two probes and go unseen.
func (k *comparer) add(name, step string, reported *time.Time, tol, short time.Duration, note string) {
	k.addBracket(name, step, reported, nil, nil, tol, short, note)
}

// addBracket is add for an instant dbprobe reports with a bracket
// [earliest, latest]: the boundary is also right when the truth lies in
// it, however far the estimate (its middle) is from the truth.
func (k *comparer) addBracket(name, step string, reported, earliest, latest *time.Time, tol, short time.Duration, note string) {
	b := Boundary{Name: name, Step: step, Truth: k.at(step), Tolerance: tol, Note: note, Earliest: earliest, Latest: latest}
	if reported != nil {
		r := *reported
		b.Reported = &r
	}
	if reported != nil && !b.Truth.IsZero() && (earliest != nil || latest != nil) {
		// The change took effect somewhere between the step's start and
		// its end (b.Truth): the bracket must meet that stretch.
		from := b.Truth
		if st, ok := k.truth.Step(step); ok && !st.Start.IsZero() && st.Start.Before(from) {
			from = st.Start
		}
		in := (earliest == nil || !b.Truth.Before(earliest.Add(-boundsSlack))) && (latest == nil || !from.After(latest.Add(boundsSlack)))
		b.InBounds = &in
	}
	switch {
	case b.Truth.IsZero():
		b.Note = join(b.Note, "step "+step+" not taken")
	case b.Reported == nil:
		if short > 0 && short < k.o.Interval {
			b.OK = true
			b.Note = join(b.Note, fmt.Sprintf("lasted %s, less than a probe interval: may fall between probes", short.Round(time.Millisecond)))
		}
	default:
		b.Error = b.Reported.Sub(b.Truth)
		b.OK = b.Error.Abs() <= tol || (b.InBounds != nil && *b.InBounds)
	}
	k.c.Boundaries = append(k.c.Boundaries, b)
}

// absent records a finding that must not exist.
func (k *comparer) absent(name string, present bool, at *time.Time) {
	b := Boundary{Name: name, OK: !present, Note: "must not be reported"}
	if present {
		b.Reported = at
	}
	k.c.Boundaries = append(k.c.Boundaries, b)
}

// span is a stretch dbprobe reported: an interruption window or a
// read-only stretch.
type span struct {
	start  time.Time
	end    *time.Time
	ends   string
	joined int    // gaps joined into it
	desc   string // for problems
	// The brackets dbprobe reports around start and end.
	startEarliest, startLatest, endEarliest, endLatest *time.Time
}

// joinGaps merges stretches that only a gap split: dbprobe could not look
// in between (it was not scheduled), so as far as the truth goes they are
// one stretch.
func joinGaps(in []span) []span {
	var out []span
	for _, sp := range in {
		if n := len(out); n > 0 && out[n-1].ends == report.EndsGap {
			out[n-1].end, out[n-1].ends = sp.end, sp.ends
			out[n-1].endEarliest, out[n-1].endLatest = sp.endEarliest, sp.endLatest
			out[n-1].joined++
			continue
		}
		out = append(out, sp)
	}
	return out
}

// pick joins gaps and returns the stretch whose start is nearest to t (nil
// when there is none); any other stretch is a problem.
func (k *comparer) pick(name string, spans []span, t time.Time) *span {
	spans = joinGaps(spans)
	i := nearest(len(spans), func(i int) time.Time { return spans[i].start }, t)
	if i < 0 {
		return nil
	}
	for j, sp := range spans {
		if j != i {
			k.problem("%s: an extra one from %s (%s)", name, k.offset(sp.start), sp.desc)
		}
	}
	return &spans[i]
}

// bounds returns the start and end of sp (nil when sp is) and the notes
// they need.
func (sp *span) bounds() (start, end *time.Time, note, endNote string) {
	if sp == nil {
		return nil, nil, "", ""
	}
	if sp.joined > 0 {
		note = fmt.Sprintf("across %d gap(s) in dbprobe's schedule", sp.joined)
	}
	if sp.end == nil {
		endNote = "still open (" + sp.ends + ")"
	}
	return &sp.start, sp.end, note, join(note, endNote)
}

// brackets returns the brackets of sp's start and end (nil when sp is).
func (sp *span) brackets() (se, sl, ee, el *time.Time) {
	if sp == nil {
		return nil, nil, nil, nil
	}
	return sp.startEarliest, sp.startLatest, sp.endEarliest, sp.endLatest
}

// window compares the stream's interruption window nearest the truth.
func (k *comparer) window(name string, ws []report.Window, startStep, endStep string) {
	spans := make([]span, len(ws))
	for i, w := range ws {
		spans[i] = span{start: w.Start, end: w.End, ends: w.Ends,
			startEarliest: w.StartEarliest, startLatest: nonZero(w.StartLatest), endEarliest: nonZero(w.EndEarliest), endLatest: w.EndLatest,
			desc: fmt.Sprintf("%d failed probes: %s", w.FailedProbes, report.Errors(w.Errors))}
	}
	sp := k.pick(name, spans, k.at(startStep))
	start, end, note, endNote := sp.bounds()
	se, sl, ee, el := sp.brackets()
	short := k.at(endStep).Sub(k.at(startStep))
	k.addBracket(name+" start", startStep, start, se, sl, k.tol, short, note)
	k.addBracket(name+" end", endStep, end, ee, el, k.tol, short, endNote)
}

// nonZero is &t, or nil for the zero time (a report that has no bracket).
func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// readOnly compares the fresh stream's read-only stretch on blue.
func (k *comparer) readOnly(fresh *report.Stream) {
	var spans []span
	for _, r := range fresh.ReadOnly {
		if isServer(r.Server, blueServerID) {
			spans = append(spans, span{start: r.Start, end: r.End, ends: r.Ends, desc: fmt.Sprintf("%d probes", r.Probes),
				startEarliest: r.StartEarliest, startLatest: nonZero(r.StartLatest), endEarliest: nonZero(r.EndEarliest), endLatest: r.EndLatest})
		}
	}
	sp := k.pick("read-only stretch on blue", spans, k.truth.At(StepBlueReadOnly))
	start, end, gapNote, endNote := sp.bounds()
	se, sl, ee, el := sp.brackets()
	// Connections drop ReadOnlyLead after blue turns read-only; with less
	// than a probe interval between, dbprobe may first see blue read-only
	// only when logins come back.
	lead := k.truth.At(StepLoginsRefused).Sub(k.truth.At(StepBlueReadOnly))
	step, note := StepBlueReadOnly, ""
	back := StepLoginsAccepted
	if k.truth.RolledBack() {
		back = StepRollbackLoginsOK
	}
	if lead < k.o.Interval && start != nil && start.Sub(k.truth.At(back)).Abs() < start.Sub(k.truth.At(step)).Abs() {
		step = back
		note = fmt.Sprintf("blue was read-only for %s before connections dropped: first seen when logins came back", lead.Round(time.Millisecond))
	}
	k.addBracket("read-only onset on blue", step, start, se, sl, k.tol, lead, join(gapNote, note))
	endStep := StepDNSSwitched
	note = join(endNote, "fresh probes reach a writable server again once the endpoint answers green")
	if k.truth.RolledBack() {
		endStep, note = StepRollbackBlueWritable, endNote
	}
	var unseen time.Duration // an onset never seen has no end either
	if start == nil {
		unseen = lead
	}
	k.addBracket("read-only end", endStep, end, ee, el, k.tol, unseen, note)
}

func (k *comparer) cutover(cs []report.Cutover) {
	var at, lo, hi *time.Time
	for i, c := range cs {
		if i == 0 {
			at, lo, hi = &cs[0].At, nonZero(cs[0].Earliest), nonZero(cs[0].Latest)
			if !isServer(c.From, blueServerID) || !isServer(c.To, greenServerID) {
				k.problem("cutover at %s goes from %s to %s, not from blue to green", k.offset(c.At), report.Server(c.From), report.Server(c.To))
			}
			continue
		}
		k.problem("an extra cutover at %s from %s to %s", k.offset(c.At), report.Server(c.From), report.Server(c.To))
	}
	k.addBracket("cutover (fresh)", StepDNSSwitched, at, lo, hi, k.tol, 0, "midpoint of the last answer by blue and the first by green")
}

func (k *comparer) dnsChange(cs []report.DNSChange, blueIP, greenIP string) {
	var at, lo, hi *time.Time
	for i, c := range cs {
		if i == 0 {
			at, lo, hi = &cs[0].At, nonZero(cs[0].Earliest), nonZero(cs[0].Latest)
			if !slices.Equal(c.From, []string{blueIP}) || !slices.Equal(c.To, []string{greenIP}) {
				k.problem("DNS change at %s goes from %s to %s, not from %s to %s", k.offset(c.At), report.Addrs(c.From), report.Addrs(c.To), blueIP, greenIP)
			}
			continue
		}
		k.problem("an extra DNS change at %s from %s to %s", k.offset(c.At), report.Addrs(c.From), report.Addrs(c.To))
	}
	k.addBracket("DNS change (fresh)", StepDNSSwitched, at, lo, hi, k.tol, 0, "")
}

// phases compares the first time each Blue/Green phase was seen.
func (k *comparer) phases(tg *report.Target) {
	var ph []report.Phase
	if tg != nil {
		ph = tg.BlueGreen
	}
	first := func(phase string, rollback bool) *time.Time {
		for i := range ph {
			if ph[i].Phase == phase && ph[i].Rollback == rollback {
				return &ph[i].At
			}
		}
		return nil
	}
	announce := k.truth.At(StepBlueReadOnly).Sub(k.truth.At(StepInProgress))
	k.add("Blue/Green PREPARATION", StepInitiated, first(event.BlueGreenPreparation, false), k.o.PhasePoll+k.o.Slack, 0,
		fmt.Sprintf("polled every %s before a switchover", k.o.PhasePoll))
	k.add("Blue/Green IN_PROGRESS", StepInProgress, first(event.BlueGreenInProgress, false), k.tol, announce,
		"readable only until connections drop")
	switch {
	case k.truth.Switched():
		k.add("Blue/Green POST", StepPost, first(event.BlueGreenPost, false), k.tol, 0, "")
		k.add("Blue/Green COMPLETED", StepCompleted, first(event.BlueGreenCompleted, false), k.tol, 0, "set on green only")
		for _, p := range ph {
			if p.Rollback {
				k.problem("Blue/Green phase %s at %s reported as a rollback in a switchover that completed", p.Phase, k.offset(p.At))
			}
		}
	case k.truth.RolledBack():
		k.add("Blue/Green back to CREATED (rollback)", StepRollbackAvailable, first(event.BlueGreenCreated, true), k.tol, 0, "")
		for _, p := range ph {
			if p.Phase == event.BlueGreenPost || p.Phase == event.BlueGreenCompleted {
				k.problem("Blue/Green phase %s at %s reported in a switchover that was rolled back", p.Phase, k.offset(p.At))
			}
		}
	}
}

// stuck compares how long the pooled stream stayed on old blue: from the
// move of the endpoint to the end of probing when its connection survived
// the move.
// verdict puts the report's verdict beside the truth: the summary a DBA
// pastes into the ticket must say what the lab did, and what the
// comparison found of the stuck pool.
func (k *comparer) verdict(rep *report.Report) {
	k.c.TruthOutcome = k.truth.Outcome
	for _, v := range report.Verdicts(rep) {
		if v.Target == k.o.Target {
			k.c.Verdict = &v
		}
	}
	v := k.c.Verdict
	if v == nil {
		return // no such target: the streams' absence is a problem already
	}
	want := map[string]string{OutcomeSwitched: report.OutcomeSwitchedOver, OutcomeRolledBack: report.OutcomeRolledBack}[k.truth.Outcome]
	if sc := k.truth.Scenario; sc != "" && sc != ScenarioBlueGreen {
		want = "" // failover, reboot, proxy: judged by their own boundaries
	}
	if want != "" && v.Outcome != want {
		k.problem("the verdict says %s, but the lab's switchover %s", v.Outcome, k.truth.Outcome)
	}
	var stale time.Duration
	if v.Existing != nil && v.Existing.Stale != nil {
		stale = time.Duration(v.Existing.Stale.Seconds * float64(time.Second))
	}
	if k.c.Stuck > 0 && (stale-k.c.Stuck).Abs() > time.Millisecond && !stuckOfAPooledStream(rep, k.o.Target, stale) {
		k.problem("the verdict says the pool was stuck for %s, the comparison %s", report.Seconds(stale.Seconds()), report.Seconds(k.c.Stuck.Seconds()))
	}
}

// stuckOfAPooledStream says whether d is the stale time of one of the
// target's pooled streams: with several observers the verdict reports the
// worst of them, whose served instants differ from the compared stream's by
// their latencies.
func stuckOfAPooledStream(rep *report.Report, target string, d time.Duration) bool {
	for _, s := range rep.Streams {
		if s.Target != target || s.Mode != event.ModePooled {
			continue
		}
		var sum float64
		for _, x := range s.Stale {
			sum += x.DurationSeconds
		}
		if (time.Duration(sum*float64(time.Second)) - d).Abs() <= time.Millisecond {
			return true
		}
	}
	return false
}

func (k *comparer) stuck(pooled *report.Stream) {
	var st []report.Stale
	for _, s := range pooled.Stale {
		if s.Server != nil && isServer(s.Server, blueServerID) {
			st = append(st, s)
		}
	}
	moved, reconnected := k.truth.At(StepDNSSwitched), k.truth.At(StepLoginsAccepted)
	// Reconnecting after the active phase, the pooled stream lands on blue
	// unless the endpoint moved within about a probe of the logins coming
	// back.
	expect := k.truth.Switched() && moved.Sub(reconnected) >= 2*k.o.Interval
	if !expect {
		if len(st) > 0 {
			k.problem("the pooled stream is reported stuck on old blue from %s, but it should not be", k.offset(st[0].Start))
		}
		return
	}
	for _, s := range st[min(1, len(st)):] {
		k.problem("an extra stale episode of the pooled stream from %s", k.offset(s.Start))
	}
	var start, last *time.Time
	if len(st) > 0 {
		start, last = &st[0].Start, &st[0].Last
		k.c.Stuck = time.Duration(st[0].DurationSeconds * float64(time.Second))
	}
	// The stream is judged stale once another stream saw the move: a probe
	// of the same tick may start a hair earlier, hence two intervals.
	tol := 2*k.o.Interval + k.o.Slack
	k.add("pooled stuck on old blue: start", StepDNSSwitched, start, tol, 0, "judged against the fresh stream's first probe on green")
	k.add("pooled stuck on old blue: last", StepProbingStopped, last, tol, 0, "its connection outlives the run")
}

// WriteText prints the comparison as a table: truth and report as offsets
// from SWITCHOVER_INITIATED, the error and the tolerance.
func (c *Comparison) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "boundary\t truth\t dbprobe\t bracket\t truth in bracket\t error\t tolerance\t \t")
	for _, b := range c.Boundaries {
		truth, got, errs := "-", "-", "-"
		if !b.Truth.IsZero() {
			truth = c.offset(b.Truth)
		}
		if b.Reported != nil {
			got = c.offset(*b.Reported)
		}
		if b.Reported != nil && !b.Truth.IsZero() {
			errs = signed(b.Error)
		}
		verdict := "ok"
		if !b.OK {
			verdict = "FAIL"
		}
		tol := "-"
		if b.Tolerance > 0 {
			tol = "±" + b.Tolerance.String()
		}
		bracket, in := "-", "-"
		if b.Earliest != nil || b.Latest != nil {
			lo, hi := "?", "?"
			if b.Earliest != nil {
				lo = c.offset(*b.Earliest)
			}
			if b.Latest != nil {
				hi = c.offset(*b.Latest)
			}
			bracket = lo + " to " + hi
		}
		if b.InBounds != nil {
			in = "yes"
			if !*b.InBounds {
				in = "NO"
			}
		}
		fmt.Fprintf(tw, "%s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t%s\n", b.Name, truth, got, bracket, in, errs, tol, verdict, noteText(b.Note))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.Stuck > 0 {
		fmt.Fprintf(w, "\nThe pooled stream was reported stuck on old blue for %s.\n", report.Seconds(c.Stuck.Seconds()))
	}
	if c.Verdict != nil {
		fmt.Fprintf(w, "\nThe lab's truth: %s.\ndbprobe's verdict: %s\n", c.TruthOutcome, c.Verdict.Text)
	}
	if len(c.Problems) > 0 {
		fmt.Fprintln(w, "\nProblems:")
		for _, p := range c.Problems {
			fmt.Fprintln(w, "  - "+p)
		}
	}
	_, err := fmt.Fprintf(w, "\nTimes are seconds after %s; error = dbprobe - truth. A boundary is ok when its error is\n"+
		"within the tolerance or the truth lies in dbprobe's bracket (the estimate is the bracket's middle).\n", c.origin)
	return err
}

func noteText(n string) string {
	if n == "" {
		return ""
	}
	return "  " + n
}

func (c *Comparison) offset(t time.Time) string {
	return fmt.Sprintf("%+.3fs", t.Sub(c.t0).Seconds())
}

func (k *comparer) offset(t time.Time) string { return k.c.offset(t) }

func signed(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	return fmt.Sprintf("%+.0fms", math.Round(ms))
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// nearest returns the index among n items whose time is nearest to t, or -1.
func nearest(n int, at func(int) time.Time, t time.Time) int {
	best, bestD := -1, time.Duration(math.MaxInt64)
	for i := range n {
		if d := at(i).Sub(t).Abs(); d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

func findStream(rep *report.Report, target, mode string) *report.Stream {
	for i := range rep.Streams {
		if s := &rep.Streams[i]; s.Target == target && s.Mode == mode {
			return s
		}
	}
	return nil
}

func findTarget(rep *report.Report, target string) *report.Target {
	for i := range rep.Targets {
		if rep.Targets[i].Name == target {
			return &rep.Targets[i]
		}
	}
	return nil
}

func isServer(s *event.Server, id int64) bool {
	return s != nil && s.ServerID != nil && *s.ServerID == id
}

func cutAt(cs []report.Cutover) *time.Time {
	if len(cs) == 0 {
		return nil
	}
	return &cs[0].At
}

func dnsAt(cs []report.DNSChange) *time.Time {
	if len(cs) == 0 {
		return nil
	}
	return &cs[0].At
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
