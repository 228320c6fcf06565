package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// doc is a report laid out for people: sections of headline sentences and
// tables. Text, Markdown and HTML render the same doc, so they never
// disagree on what a report says.
type doc struct {
	title    string
	lines    []string
	sections []section
}

type section struct {
	target   string // empty for the overview
	title    string
	lines    []string
	tables   []table
	timeline bool // HTML draws the target's timeline here
}

type table struct {
	title string
	head  []string
	rows  [][]string
	// num marks right-aligned (numeric) columns.
	num []bool
	// spark, when set, holds each row's availability, which HTML draws as
	// a small chart in column sparkCol (text shows the row's unicode).
	spark    [][]*float64
	sparkCol int
}

// layout builds the doc of rep.
func layout(rep *Report) doc {
	tf := timeFormat(rep)
	d := doc{title: "dbprobe report"}
	if rep.RunID != "" {
		d.title += ": run " + rep.RunID
	}
	switch {
	case rep.From == nil:
		d.lines = append(d.lines, "No probes in this report.")
	default:
		d.lines = append(d.lines, fmt.Sprintf("From %s to %s (%s), %d streams. Times are UTC.",
			Clock(*rep.From), Clock(*rep.To), Length(rep.To.Sub(*rep.From)), len(rep.Streams)))
	}
	if j := rep.Journal; j != nil {
		d.lines = append(d.lines, fmt.Sprintf("The journal is missing events: %d dropped while its disk refused writes (not analysed here either), %d still unwritten when dbprobe stopped (analysed here, absent from the journal).",
			j.DroppedEvents, j.UnwrittenEvents))
	}
	if !rep.Complete {
		d.lines = append(d.lines, "The run is still going: open windows may still close, and the latest probes may not be analysed yet.")
	}
	order := rankTargets(rep)
	if n := len(order); n > maxTargetSections {
		d.lines = append(d.lines, boundLine(n))
	}
	verdicts := Verdicts(rep)
	if len(verdicts) > 0 {
		sec := section{title: "Verdict"}
		for _, i := range order[:min(len(order), maxSummaryRows)] {
			sec.lines = append(sec.lines, verdicts[i].Text)
		}
		d.sections = append(d.sections, sec)
	}
	if len(rep.Targets) > 0 {
		d.sections = append(d.sections, section{title: "Fleet", tables: []table{fleetTable(rep, verdicts, tf)}})
	}
	if sec := consensusSection(Consensus(rep), tf); sec != nil {
		d.sections = append(d.sections, *sec)
	}
	for _, i := range order[:min(len(order), maxTargetSections)] {
		d.sections = append(d.sections, targetSection(rep, &rep.Targets[i], tf))
	}
	return d
}

// fleetTable is the fleet view: one row per target, the worst first.
func fleetTable(rep *Report, verdicts []Verdict, tf func(time.Time) string) table {
	t := table{title: "Targets, worst first",
		head: []string{"Target", "Labels", "Outcome", "Fresh reads down", "Fresh writes down", "Cutover", "Stuck on the old server", "Availability"},
		num:  []bool{false, false, false, true, true, false, false, false}}
	rows := fleet(rep, verdicts)
	for _, r := range rows[:min(len(rows), maxSummaryRows)] {
		cut := "none"
		if r.Cutover != nil {
			cut = tf(*r.Cutover)
		}
		t.rows = append(t.rows, []string{r.Target, LabelText(r.Labels), strings.ReplaceAll(r.Outcome, "_", " "),
			optSeconds(r.FreshReadSeconds, "no fresh"), optSeconds(r.FreshWriteSeconds, "not probed"), cut,
			stuckText(r.verdict), Sparkline(r.Availability)})
		t.spark = append(t.spark, r.Availability)
	}
	t = t.dropEmptyColumns()
	t.sparkCol = slices.Index(t.head, "Availability")
	return t
}

func optSeconds(v *float64, none string) string {
	if v == nil {
		return none
	}
	return Seconds(*v)
}

// What a rendered report shows of a run with many targets (an overloaded
// dbprobe, a consensus of many observers): the page must stay a few
// megabytes that a browser opens and a status page serves at once. The
// JSON report keeps everything.
const (
	// maxTargetSections is how many targets get a section of their own,
	// with timelines and every finding.
	maxTargetSections = 20
	// maxSummaryRows is how many targets the fleet table lists.
	maxSummaryRows = 200
)

// stuckText words the worst stale pooled connection of a verdict for the
// summary table: its own finding, never downtime of the switchover.
func stuckText(v *Verdict) string {
	if v.Existing == nil || v.Existing.Stale == nil {
		return "no"
	}
	st := v.Existing.Stale
	if st.OKWrites > 0 {
		return fmt.Sprintf("%s, %d WRITES ACCEPTED", Seconds(st.Seconds), st.OKWrites)
	}
	return fmt.Sprintf("%s, %d writes failed", Seconds(st.Seconds), st.FailedWrites)
}

// boundLine says what a report of n targets leaves out.
func boundLine(n int) string {
	listed := "all are listed in the fleet table"
	if n > maxSummaryRows {
		listed = fmt.Sprintf("the fleet table lists the %d with the most downtime", maxSummaryRows)
	}
	return fmt.Sprintf("%d targets: %s, and the %d with the most downtime get a section of their own, worst first. "+
		"The JSON report has every target; dbprobe report --target NAME shows any one in full.", n, listed, maxTargetSections)
}

// rankTargets orders the report's targets for display: as they are when
// all fit, else the most downtime first (then a cutover, then the name).
func rankTargets(rep *Report) []int {
	order := make([]int, len(rep.Targets))
	for i := range order {
		order[i] = i
	}
	if len(order) <= maxTargetSections {
		return order
	}
	worst := worstSeconds
	slices.SortStableFunc(order, func(a, b int) int {
		ta, tb := &rep.Targets[a], &rep.Targets[b]
		if c := cmp.Compare(worst(tb), worst(ta)); c != 0 {
			return c
		}
		if (ta.FirstCutover != nil) != (tb.FirstCutover != nil) {
			if ta.FirstCutover != nil {
				return -1
			}
			return 1
		}
		return cmp.Compare(ta.Name, tb.Name)
	})
	return order
}

// timeFormat picks how instants are shown: time of day when the report
// lies within one UTC day, full timestamps otherwise.
func timeFormat(rep *Report) func(time.Time) string {
	if rep.From != nil && rep.From.UTC().Format(time.DateOnly) == rep.To.UTC().Format(time.DateOnly) {
		return TimeOfDay
	}
	return Clock
}

// targetSection is one target's part of a report: headlines, the streams
// table, then a table per kind of finding that has any.
func targetSection(rep *Report, tg *Target, tf func(time.Time) string) section {
	sec := section{target: tg.Name, title: "Target " + tg.Name, timeline: true}
	var streams []*Stream
	observers := map[string]bool{}
	for i := range rep.Streams {
		if s := &rep.Streams[i]; s.Target == tg.Name {
			streams = append(streams, s)
			observers[s.Observer] = true
		}
	}
	name := func(s *Stream) string {
		if len(observers) > 1 {
			return s.Observer + " " + s.Mode
		}
		return s.Mode
	}
	sn := serverNames(tg)
	sec.lines = append(headlines(tg, streams, name, sn, tf), notes(streams, name)...)
	sec.tables = append(sec.tables, streamsTable(streams, name))
	for _, t := range []table{
		windowsTable(streams, name, tf), readOnlyTable(streams, name, sn, tf), cutoversTable(streams, name, sn, tf),
		dnsTable(streams, name, tf), staleTable(streams, name, sn, tf), gapsTable(streams, name, tf),
		blueGreenTable(tg, tf), awsEventsTable(tg, tf), serversTable(tg, sn, tf),
	} {
		if len(t.rows) > 0 {
			sec.tables = append(sec.tables, t.dropEmptyColumns())
		}
	}
	return sec
}

// headlines says what a reader wants first: the cutover, the downtime of
// each stream, stale connections, replication lag.
func headlines(tg *Target, streams []*Stream, name func(*Stream) string, sn serverNamer, tf func(time.Time) string) []string {
	var lines []string
	if c := tg.FirstCutover; c != nil {
		lines = append(lines, fmt.Sprintf("Cut over from %s to %s at %s %s (seen first by %s).",
			sn.text(c.From), sn.text(c.To), tf(c.At), Plusminus(c.Earliest, c.Latest), c.Mode))
	}
	for _, s := range streams {
		for _, sig := range []struct {
			name string
			s    *Signal
		}{{"reads", &s.Read}, {"writes", &s.Write}} {
			if len(sig.s.Windows) == 0 {
				continue
			}
			if len(s.Stale) == 0 {
				lines = append(lines, fmt.Sprintf("%s: %s down %s in %s.", name(s), sig.name, netText(sig.s), plural(len(sig.s.Windows), "window")))
				continue
			}
			d := DownOutsideStale(sig.s, s.Stale)
			lines = append(lines, fmt.Sprintf("%s: %s down %s outside its stale stretch (%s including it).", name(s), sig.name, downBounds(&d), Seconds(sig.s.NetSeconds)))
		}
		if s.Slow > 0 {
			lines = append(lines, fmt.Sprintf("%s: %d slow successes (longer than the probe interval): degradation, not downtime.", name(s), s.Slow))
		}
		for _, st := range s.Stale {
			lines = append(lines, fmt.Sprintf("%s stayed on the old %s for %s after the target moved (%d probes, %d writes failed, %d writes accepted).",
				name(s), sn.staleOn(st.Reason, st.Server), durationBounds(st.DurationSeconds, st.MinSeconds, st.MaxSeconds), st.Probes, st.FailedWrites, st.OKWrites))
		}
	}
	for _, s := range streams {
		if r := s.Replication; r != nil && r.Samples > 0 {
			lines = append(lines, fmt.Sprintf("%s: replication lag to green at most %s (at %s), last %s, over %d measurements (%d failed).",
				name(s), Seconds(r.MaxSeconds), tf(r.MaxAt), Seconds(r.LastSeconds), r.Samples, r.Errors))
		}
	}
	if len(lines) == 0 {
		lines = append(lines, "No interruption, cutover or stale connection seen.")
	}
	return lines
}

// notes says what the tables leave out: findings past the lists' bounds,
// events that came too late.
func notes(streams []*Stream, name func(*Stream) string) []string {
	var lines []string
	for _, s := range streams {
		for _, list := range slices.Sorted(maps.Keys(s.Omitted)) {
			lines = append(lines, fmt.Sprintf("%s: %d more %s not listed (totals include them).", name(s), s.Omitted[list], list))
		}
		if s.Dropped > 0 {
			lines = append(lines, fmt.Sprintf("%s: %d events for ticks already seen (or given up as missing) were not analysed.", name(s), s.Dropped))
		}
		if s.Late > 0 {
			lines = append(lines, fmt.Sprintf("%s: %d events arrived after later ones and were analysed out of order.", name(s), s.Late))
		}
	}
	return lines
}

func streamsTable(streams []*Stream, name func(*Stream) string) table {
	t := table{title: "Streams",
		head: []string{"Stream", "Probes", "Failed", "Reads down (net)", "Reads gross", "Writes down (net)", "Writes gross", "Latency p50 / p99 / max"},
		num:  []bool{false, true, true, true, true, true, true, true}}
	for _, s := range streams {
		write, writeGross := "not probed", ""
		if s.Write.Probed {
			write, writeGross = netText(&s.Write), Seconds(s.Write.GrossSeconds)
		}
		t.rows = append(t.rows, []string{name(s), strconv.FormatInt(s.Probes, 10), strconv.FormatInt(s.Failed, 10),
			netText(&s.Read), Seconds(s.Read.GrossSeconds), write, writeGross,
			fmt.Sprintf("%s / %s / %s ms", ms(s.Latency.P50), ms(s.Latency.P99), ms(s.Latency.Max))})
	}
	return t
}

func windowsTable(streams []*Stream, name func(*Stream) string, tf func(time.Time) string) table {
	t := table{title: "Interruption windows", head: []string{"Stream", "Signal", "Start (earliest to latest)", "End (earliest to latest)", "Down (min to max)", "Failed probes", "Errors", "Note"},
		num: []bool{false, false, false, false, true, true, false, false}}
	for _, s := range streams {
		for _, sig := range []struct {
			name string
			s    *Signal
		}{{event.SignalRead, &s.Read}, {event.SignalWrite, &s.Write}} {
			for _, w := range sig.s.Windows {
				t.rows = append(t.rows, []string{name(s), sig.name, StartBracket(w.Start, w.StartEarliest, w.StartLatest, tf),
					EndBracket(w.End, w.EndEarliest, w.EndLatest, w.Ends, tf), Bounds(&w),
					strconv.FormatInt(w.FailedProbes, 10), Errors(w.Errors), windowNote(&w)})
			}
		}
	}
	return t
}

func readOnlyTable(streams []*Stream, name func(*Stream) string, sn serverNamer, tf func(time.Time) string) table {
	t := table{title: "Read-only", head: []string{"Stream", "Server", "Start (earliest to latest)", "End (earliest to latest)", "Probes", "Note"},
		num: []bool{false, false, false, false, true, false}}
	for _, s := range streams {
		for _, r := range s.ReadOnly {
			t.rows = append(t.rows, []string{name(s), sn.text(r.Server), StartBracket(r.Start, r.StartEarliest, r.StartLatest, tf),
				EndBracket(r.End, r.EndEarliest, r.EndLatest, r.Ends, tf), strconv.FormatInt(r.Probes, 10), endsNote(r.Ends)})
		}
	}
	return t
}

func cutoversTable(streams []*Stream, name func(*Stream) string, sn serverNamer, tf func(time.Time) string) table {
	t := table{title: "Cutovers", head: []string{"Stream", "At", "Bounds", "From", "To", "Note"}}
	for _, s := range streams {
		for _, c := range s.Cutovers {
			t.rows = append(t.rows, []string{name(s), tf(c.At), tf(c.Earliest) + " to " + tf(c.Latest), sn.text(c.From), sn.text(c.To), changeNote(c.Rollback, c.AcrossGap)})
		}
	}
	return t
}

func dnsTable(streams []*Stream, name func(*Stream) string, tf func(time.Time) string) table {
	t := table{title: "DNS changes", head: []string{"Stream", "At", "Bounds", "From", "To", "Note"}}
	for _, s := range streams {
		for _, c := range s.DNSChanges {
			t.rows = append(t.rows, []string{name(s), tf(c.At), tf(c.Earliest) + " to " + tf(c.Latest), Addrs(c.From), Addrs(c.To), changeNote(false, c.AcrossGap)})
		}
	}
	return t
}

func staleTable(streams []*Stream, name func(*Stream) string, sn serverNamer, tf func(time.Time) string) table {
	t := table{title: "Stale connections", head: []string{"Stream", "Still on", "Target moved", "Start", "End", "Stale for", "Probes", "Writes failed", "Writes accepted"},
		num: []bool{false, false, false, false, false, true, true, true, true}}
	for _, s := range streams {
		for _, x := range s.Stale {
			t.rows = append(t.rows, []string{name(s), sn.staleOn(x.Reason, x.Server), tf(x.Since), StartBracket(x.Start, x.StartEarliest, x.StartLatest, tf),
				EndBracket(x.End, x.EndEarliest, x.EndLatest, x.Ends, tf), durationBounds(x.DurationSeconds, x.MinSeconds, x.MaxSeconds), strconv.FormatInt(x.Probes, 10), strconv.FormatInt(x.FailedWrites, 10), strconv.FormatInt(x.OKWrites, 10)})
		}
	}
	return t
}

func gapsTable(streams []*Stream, name func(*Stream) string, tf func(time.Time) string) table {
	t := table{title: "Gaps (unknown: neither up nor down)", head: []string{"Stream", "From", "To", "Length", "Ticks", "Why"},
		num: []bool{false, false, false, true, true, false}}
	for _, s := range streams {
		for _, g := range s.Gaps {
			why := "dbprobe could not run on schedule"
			switch g.Kind {
			case GapMissing:
				why = "no events (dbprobe not running, or lost)"
			case GapNoToken:
				why = "no IAM token: dbprobe could not try the database"
			}
			t.rows = append(t.rows, []string{name(s), tf(g.From), tf(g.To), Seconds(g.Seconds), strconv.FormatInt(g.Ticks, 10), why})
		}
	}
	return t
}

func blueGreenTable(tg *Target, tf func(time.Time) string) table {
	t := table{title: "Blue/Green phases", head: []string{"At", "Observer", "Source", "Phase", "Previous", "Note"}}
	observers := map[string]bool{}
	for _, p := range tg.BlueGreen {
		observers[p.Observer] = true
	}
	for _, p := range tg.BlueGreen {
		note := ""
		if p.Rollback {
			note = "rollback"
		}
		obs := ""
		if len(observers) > 1 {
			obs = p.Observer // each observer's poller goes through the phases
		}
		t.rows = append(t.rows, []string{tf(p.At), obs, p.Source, p.Phase, p.PrevPhase, note})
	}
	return t
}

func awsEventsTable(tg *Target, tf func(time.Time) string) table {
	t := table{title: "AWS events (what AWS reported)", head: []string{"At", "Source", "Message"}}
	for _, e := range tg.AWSEvents {
		t.rows = append(t.rows, []string{tf(e.At), e.Source, e.Message})
	}
	return t
}

func serversTable(tg *Target, sn serverNamer, tf func(time.Time) string) table {
	t := table{title: "Servers", head: []string{"Name", "Identity", "Hostname", "Address", "Aurora role", "First answer", "Last answer", "Probes"},
		num: []bool{false, false, false, false, false, false, false, true}}
	for i := range tg.Servers {
		s := &tg.Servers[i]
		t.rows = append(t.rows, []string{sn.ofSeen(s), s.Identity, s.Hostname, s.Address, strings.Join(s.Roles, " then "), tf(s.FirstSeen), tf(s.LastSeen), strconv.FormatInt(s.Probes, 10)})
	}
	return t
}

// dropEmptyColumns removes columns with no value in any row (a "Note"
// column when nothing is worth noting).
func (t table) dropEmptyColumns() table {
	keep := make([]bool, len(t.head))
	for _, r := range t.rows {
		for i, c := range r {
			keep[i] = keep[i] || c != ""
		}
	}
	out := table{title: t.title, spark: t.spark}
	for i, h := range t.head {
		if !keep[i] {
			continue
		}
		out.head = append(out.head, h)
		out.num = append(out.num, i < len(t.num) && t.num[i])
	}
	for _, r := range t.rows {
		var row []string
		for i, c := range r {
			if keep[i] {
				row = append(row, c)
			}
		}
		out.rows = append(out.rows, row)
	}
	return out
}

// netText words a signal's net downtime with its bounds.
func netText(s *Signal) string {
	if len(s.Windows) == 0 && s.NetSeconds == 0 {
		return "none"
	}
	if s.NetMaxSeconds == nil {
		return fmt.Sprintf("%s (at least %s)", Seconds(s.NetSeconds), strconv.FormatFloat(s.NetMinSeconds, 'f', 3, 64))
	}
	return fmt.Sprintf("%s (%s to %s)", Seconds(s.NetSeconds),
		strconv.FormatFloat(s.NetMinSeconds, 'f', 3, 64), strconv.FormatFloat(*s.NetMaxSeconds, 'f', 3, 64))
}

func endText(end *time.Time, ends string, tf func(time.Time) string) string {
	switch {
	case end != nil:
		return tf(*end)
	case ends == EndsGap:
		return "(gap)"
	case ends == EndsStopped:
		return "(stopped)"
	}
	return "(open)"
}

func windowNote(w *Window) string {
	var n []string
	switch w.Begins {
	case BeginsAtFirstProbe:
		n = append(n, "failing from the first probe")
	case BeginsAfterGap:
		n = append(n, "began during a gap")
	}
	if note := endsNote(w.Ends); note != "" {
		n = append(n, note)
	}
	if w.UnknownSeconds > 0 {
		n = append(n, Seconds(w.UnknownSeconds)+" unknown (dbprobe did not probe), not counted")
	}
	return join(n)
}

// StartBracket words the start of a window or stretch: the estimate and
// the bracket that contains the true instant, "10:00:01.050 (10:00:01.000
// to 10:00:01.100)", or "10:00:01.000 or earlier" when nothing bounds it
// from below.
func StartBracket(est time.Time, earliest *time.Time, latest time.Time, tf func(time.Time) string) string {
	if earliest == nil {
		return tf(latest) + " or earlier"
	}
	return fmt.Sprintf("%s (%s to %s)", tf(est), tf(*earliest), tf(latest))
}

// EndBracket words the end of a window or stretch likewise; an open one
// says since when it is known to last.
func EndBracket(est *time.Time, earliest time.Time, latest *time.Time, ends string, tf func(time.Time) string) string {
	if est == nil || latest == nil {
		return endText(nil, ends, tf) + " still at " + tf(earliest)
	}
	return fmt.Sprintf("%s (%s to %s)", tf(*est), tf(earliest), tf(*latest))
}

func endsNote(ends string) string {
	switch ends {
	case EndsGap:
		return "cut by a gap"
	case EndsOpen:
		return "still open"
	case EndsStopped:
		return "the stream stopped (config reload)"
	}
	return ""
}

func changeNote(rollback, acrossGap bool) string {
	var n []string
	if rollback {
		n = append(n, "back to an earlier server")
	}
	if acrossGap {
		n = append(n, "across a gap")
	}
	return join(n)
}

func join(parts []string) string { return strings.Join(parts, "; ") }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func ms(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
