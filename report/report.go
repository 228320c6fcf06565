// Package report holds dbprobe's downtime report: the model the detector
// fills (its JSON form is the versioned contract documented in
// docs/report.md) and its renderings as text, Markdown, JSON and a
// self-contained HTML page.
//
// A Report is plain data: renderers never change it, and every list in it is
// bounded by the number of findings, never by the number of probes, so
// rendering takes the same memory for a one-minute run as for a week.
package report

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/event"
)

// Schema is the version of the JSON report. It changes only when a field is
// removed or changes meaning; added fields keep the version. Version 2: a
// window's and a stretch's edges are brackets built from each probe's start
// and end (docs/report.md says what changed).
const Schema = 2

// What bounds a window or episode (Window.Begins, Window.Ends and the same
// fields elsewhere).
const (
	// BeginsAfterSuccess: the probe before the first failure succeeded, so
	// the real start lies between the two.
	BeginsAfterSuccess = "after_success"
	// BeginsAtFirstProbe: the stream's first probe already failed; how long
	// before it the outage began is unknown.
	BeginsAtFirstProbe = "at_first_probe"
	// BeginsAfterGap: a gap precedes the first failure; the outage may have
	// begun anywhere in it.
	BeginsAfterGap = "after_gap"

	// EndsRecovered: a probe succeeded again (End is that probe).
	EndsRecovered = "recovered"
	// EndsGap: schema 1 ended windows, read-only stretches and stale
	// episodes at a gap; schema 2 splits nothing at a gap and no longer
	// reports it.
	EndsGap = "gap"
	// EndsOpen: still failing at the last probe of the report.
	EndsOpen = "open"
	// EndsStopped: the stream stopped while failing (its target left the
	// configuration, or changed, on a reload); like a gap, what came after
	// is unknown.
	EndsStopped = "stopped"
)

// Gap kinds.
const (
	// GapSkipped: dbprobe itself could not run on schedule (a gap event).
	GapSkipped = "gap"
	// GapMissing: ticks for which no event exists at all (the process was
	// stopped, or the journal lost them).
	GapMissing = "missing"
	// GapNoToken: probes that could not try the database because dbprobe
	// had no IAM authentication token (class iam_token). Their outcome is
	// unknown, not a failure of the database.
	GapNoToken = "iam_token"
)

// Report is the whole downtime report of one run.
type Report struct {
	Schema int    `json:"schema"`
	RunID  string `json:"run_id"`
	// From and To are the first and last probe in the report; null when
	// there is none.
	From *time.Time `json:"from"`
	To   *time.Time `json:"to"`
	// Complete is false while the run is still going: open windows may
	// still close and recent probes may not be analysed yet.
	Complete bool `json:"complete"`
	// Journal says what the run's journal is missing; null when nothing.
	Journal *JournalLoss `json:"journal,omitempty"`
	Targets []Target     `json:"targets"`
	Streams []Stream     `json:"streams"`
}

// JournalLoss is what the journal could not keep while its disk refused
// writes.
type JournalLoss struct {
	// DroppedEvents were probed but never journaled: the disk refused
	// writes and the in-memory backlog was full. The analysis leaves them
	// out, as a report made later from the journal does.
	DroppedEvents uint64 `json:"dropped_events"`
	// UnwrittenEvents were still waiting for the disk when dbprobe
	// stopped: this report counts them, the journal does not have them.
	UnwrittenEvents uint64 `json:"unwritten_events"`
}

// Target summarises every stream of one target.
type Target struct {
	Name    string `json:"name"`
	Streams int    `json:"streams"`
	// ReadSeconds and WriteSeconds are the worst net downtime any stream of
	// the target saw, leaving out the stretches in which a stream was stale
	// (stuck on a server the target had left: its own finding, see
	// Stream.Stale); WriteSeconds is null when no stream probed writes.
	ReadSeconds  float64  `json:"read_seconds"`
	WriteSeconds *float64 `json:"write_seconds"`
	// FirstCutover is the earliest cutover any stream saw.
	FirstCutover *Cutover `json:"first_cutover"`
	// Servers lists every server that answered, in order of first answer.
	Servers   []ServerSeen `json:"servers"`
	BlueGreen []Phase      `json:"bluegreen"`
	// AWSEvents is what AWS itself reported about the target's database
	// (aws_events), in the order of AWS's dates.
	AWSEvents []AWSEvent `json:"aws_events,omitempty"`
	// Topology is the latest mysql.rds_topology the Blue/Green poller
	// read, one "role status endpoint:port" per row (event.BlueGreen.Rows).
	Topology []string `json:"topology,omitempty"`
	// Labels are the labels of the target's latest probe (the target's
	// labels over observer.labels).
	Labels map[string]string `json:"labels,omitempty"`
}

// AWSEvent is one event AWS reported: an RDS event or a Blue/Green
// deployment's status as dbprobe read it.
type AWSEvent struct {
	At time.Time `json:"at"`
	// Source is "<source type> <identifier>", e.g. "db-cluster orders".
	Source  string `json:"source"`
	Message string `json:"message"`
}

// ServerSeen is one server that answered probes of a target.
type ServerSeen struct {
	Identity string `json:"identity"`
	Hostname string `json:"hostname,omitempty"`
	Address  string `json:"address,omitempty"` // first address it answered on
	// ServerID, Port and AuroraServerID name the server where it has no
	// role (see docs/report.md, "Server names").
	ServerID       *int64    `json:"server_id,omitempty"`
	Port           *int64    `json:"port,omitempty"`
	AuroraServerID string    `json:"aurora_server_id,omitempty"`
	FirstSeen      time.Time `json:"first_seen"`
	LastSeen       time.Time `json:"last_seen"`
	Probes         int64     `json:"probes"`
	// Roles are the Aurora roles it answered in ("writer", "reader"), in
	// the order first seen: a reader promoted by a failover shows both.
	Roles []string `json:"roles,omitempty"`
}

// Phase is one Blue/Green switchover phase as first seen.
type Phase struct {
	At        time.Time `json:"at"`
	Phase     string    `json:"phase"`
	PrevPhase string    `json:"prev_phase,omitempty"`
	// Source tells apart pollers of the same target (e.g. "blue", "green").
	Source string `json:"source,omitempty"`
	// Observer is the dbprobe whose poller saw it: merged observers each
	// go through the phases.
	Observer string `json:"observer,omitempty"`
	// Rollback is set when the phase went backwards.
	Rollback bool `json:"rollback,omitempty"`
}

// Stream is what one stream (observer x target x mode) saw.
type Stream struct {
	Observer string     `json:"observer"`
	Target   string     `json:"target"`
	Mode     string     `json:"mode"`
	From     *time.Time `json:"from"`
	To       *time.Time `json:"to"`
	Probes   int64      `json:"probes"`
	// Failed counts probes whose read or write failed.
	Failed int64 `json:"failed"`
	// Slow counts successful probes slower than the probe interval (they
	// overlapped the next one): degradation, never downtime.
	Slow int64 `json:"slow_probes"`
	// Dropped counts events that arrived after their place in the stream's
	// order had been given up (or twice); they are not analysed.
	Dropped int64 `json:"dropped_events,omitempty"`
	// Late counts events that arrived after events observed later than
	// them had been analysed; they were analysed out of order.
	Late       int64       `json:"late_events,omitempty"`
	Read       Signal      `json:"read"`
	Write      Signal      `json:"write"`
	ReadOnly   []ReadOnly  `json:"read_only"`
	Cutovers   []Cutover   `json:"cutovers"`
	DNSChanges []DNSChange `json:"dns_changes"`
	Stale      []Stale     `json:"stale"`
	Gaps       []Gap       `json:"gaps"`
	Latency    Latency     `json:"latency_ms"`
	// Replication is the replication lag measured on the target's green
	// side after this stream's writes; null when no green is configured.
	Replication *Replication `json:"replication_lag"`
	// Servers is the "who answered" lane: consecutive runs of answers by
	// the same server.
	Servers  []Span   `json:"servers"`
	Timeline Timeline `json:"timeline"`
	// Details are finer timelines around the moments findings come from
	// (failures, and changes of the server, its read-only state or the DNS
	// answer), for the HTML report's detail figures where Timeline is too
	// coarse: probes at their own spacing from a few minutes before to a
	// few minutes after. Not part of the JSON document.
	Details []Timeline `json:"-"`
	// Omitted counts findings left out of a list that reached its cap, by
	// list name ("read.windows", "cutovers", ...). Totals still count them.
	Omitted map[string]int64 `json:"omitted,omitempty"`
}

// Key is the stream's identity.
func (s *Stream) Key() event.StreamKey {
	return event.StreamKey{Observer: s.Observer, Target: s.Target, Mode: s.Mode}
}

// Signal is the downtime of reads or of writes in one stream.
type Signal struct {
	// Probed is false for writes of a target without a write probe.
	Probed bool `json:"probed"`
	// NetSeconds is the sum of the windows' duration_seconds; NetMinSeconds
	// and NetMaxSeconds sum their bounds (max is null when a window's start
	// or end is unknown).
	NetSeconds    float64  `json:"net_seconds"`
	NetMinSeconds float64  `json:"net_min_seconds"`
	NetMaxSeconds *float64 `json:"net_max_seconds"`
	// GrossSeconds runs from the first window's start to the last window's
	// end (or its last failed probe when it has no end).
	GrossSeconds float64  `json:"gross_seconds"`
	FailedProbes int64    `json:"failed_probes"`
	Windows      []Window `json:"windows"`
}

// Window is one interruption. Each edge is a bracket that contains the true
// instant (docs/report.md, "What a probe proves") with an estimate inside.
type Window struct {
	// Edges: StartEarliest is the last instant the server is known to
	// have served before the outage, null when nothing bounds it (the
	// stream's first probe already failed, or an unknown stretch came
	// before); StartLatest the first it is known to have been down at;
	// EndEarliest the last it is known to have been down at; EndLatest
	// the first it is known to have served at again (null while still
	// failing, with End). Start is StartLatest when StartEarliest is
	// unknown.
	Edges
	// LastFailed is when dbprobe saw the window's last failed probe.
	LastFailed time.Time `json:"last_failed"`
	// DurationSeconds is End - Start less unknown time; MinSeconds
	// EndEarliest - StartLatest less unknown time (certainly down that
	// long); MaxSeconds EndLatest - StartEarliest (at most that long, null
	// when either is unknown). When End is unknown DurationSeconds is
	// MinSeconds.
	DurationSeconds float64  `json:"duration_seconds"`
	MinSeconds      float64  `json:"min_seconds"`
	MaxSeconds      *float64 `json:"max_seconds"`
	// UnknownSeconds is time inside the window in which dbprobe knows
	// nothing (it could not probe): not counted as downtime.
	UnknownSeconds float64          `json:"unknown_seconds"`
	FailedProbes   int64            `json:"failed_probes"`
	Errors         map[string]int64 `json:"errors"`
	Begins         string           `json:"begins"`
	Ends           string           `json:"ends"`
}

// ReadOnly is a stretch in which the answering server refused writes. Its
// edges are brackets, as a window's.
type ReadOnly struct {
	// Edges: the onset after the last writable answer, by the first
	// read-only one; the end after the last read-only answer, by the
	// first from a writable server (or from another server). End is null
	// while open or when a gap ended the stretch.
	Edges
	Last   time.Time     `json:"last"`
	Probes int64         `json:"probes"`
	Server *event.Server `json:"server"`
	Ends   string        `json:"ends"`
}

// Cutover is a change of the answering server between consecutive answered
// probes.
type Cutover struct {
	At       time.Time     `json:"at"`
	Earliest time.Time     `json:"earliest"`
	Latest   time.Time     `json:"latest"`
	From     *event.Server `json:"from"`
	To       *event.Server `json:"to"`
	// Rollback is set when the stream returns to a server it was answered
	// by before.
	Rollback  bool `json:"rollback,omitempty"`
	AcrossGap bool `json:"across_gap,omitempty"`
	// Mode is the stream that saw it, in Target.FirstCutover only.
	Mode string `json:"mode,omitempty"`
	// observer saw it, while a verdict is made.
	observer string
}

// DNSChange is a change of the resolved answer set.
type DNSChange struct {
	At        time.Time `json:"at"`
	Earliest  time.Time `json:"earliest"`
	Latest    time.Time `json:"latest"`
	From      []string  `json:"from"`
	To        []string  `json:"to"`
	AcrossGap bool      `json:"across_gap,omitempty"`
}

// Stale is a stretch in which a stream was still answered by a server (or
// connected to an address) the target had already moved away from.
//
// Its edges are brackets, as a window's, from the instants the probes were
// served: the stream became stale (the target moved while it stayed on the
// old server) in [StartEarliest, StartLatest], after the move's earliest
// bound and after any answer from elsewhere, by the query of the first stale
// probe; it left the old server in [EndEarliest, EndLatest], after the
// query of the last stale probe began, by the query of the first answer
// from elsewhere. Start and End are the middles.
type Stale struct {
	// Edges: End and EndLatest are null while the episode is open or
	// when the run ended in it.
	Edges
	Last time.Time `json:"last"`
	// Since is when the target's move was first seen (the latest bound of
	// the cutover or DNS change that made this stream stale).
	Since time.Time `json:"since"`
	// DurationSeconds is End - Start (EndEarliest - Start while open);
	// MinSeconds EndEarliest - StartLatest; MaxSeconds EndLatest -
	// StartEarliest, null while open.
	DurationSeconds float64       `json:"duration_seconds"`
	MinSeconds      float64       `json:"min_seconds"`
	MaxSeconds      *float64      `json:"max_seconds"`
	Probes          int64         `json:"probes"`
	FailedWrites    int64         `json:"failed_writes"`
	OKWrites        int64         `json:"ok_writes"`
	Server          *event.Server `json:"server"`
	Reason          string        `json:"reason"`
	Ends            string        `json:"ends"`
}

// Edges are the brackets of a window's, read-only stretch's or stale
// episode's start and end: the true start lies in [StartEarliest,
// StartLatest], the true end in [EndEarliest, EndLatest]; Start and End are
// the estimates, the middles.
type Edges struct {
	Start         time.Time  `json:"start"`
	StartEarliest *time.Time `json:"start_earliest"`
	StartLatest   time.Time  `json:"start_latest"`
	End           *time.Time `json:"end"`
	EndEarliest   time.Time  `json:"end_earliest"`
	EndLatest     *time.Time `json:"end_latest"`
}

// Gap is a stretch with no probe results: unknown, never up or down.
type Gap struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds float64   `json:"seconds"`
	Ticks   int64     `json:"ticks"`
	Kind    string    `json:"kind"`
}

// Replication summarises the replication lag to the green side: the age of
// the oldest heartbeat write green had not applied, measured after probes.
type Replication struct {
	Samples     int64     `json:"samples"`
	Errors      int64     `json:"errors"` // reads of green that failed
	MaxSeconds  float64   `json:"max_seconds"`
	MaxAt       time.Time `json:"max_at"`
	LastSeconds float64   `json:"last_seconds"`
	LastAt      time.Time `json:"last_at"`
}

// Latency of successful probes (total probe time), in milliseconds. The
// percentiles come from a log-bucket histogram and are within 1% of the
// exact value; Max is exact.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Span is a run of consecutive answers by one server.
type Span struct {
	Start    time.Time `json:"start"`
	Last     time.Time `json:"last"`
	Identity string    `json:"identity"`
	Address  string    `json:"address,omitempty"`
	Probes   int64     `json:"probes"`
}

// Timeline is the stream's probes downsampled into equal time buckets (at
// most a fixed number, so its size does not depend on the run's length):
// bucket i covers [Start + i*StepSeconds, Start + (i+1)*StepSeconds).
// MinMS and MaxMS bound the latency of the bucket's successful probes (0 when
// it has none).
type Timeline struct {
	Start       time.Time `json:"start"`
	StepSeconds float64   `json:"step_seconds"`
	Probes      []int64   `json:"probes"`
	Failed      []int64   `json:"failed"`
	// Slow counts the bucket's successes slower than the probe interval:
	// degradation, not downtime.
	Slow  []int64   `json:"slow"`
	MinMS []float64 `json:"min_ms"`
	MaxMS []float64 `json:"max_ms"`
}

// End is when the timeline's last bucket ends.
func (t *Timeline) End() time.Time {
	return t.Start.Add(time.Duration(float64(len(t.Probes)) * t.StepSeconds * float64(time.Second)))
}

// Formats are the renderings Render knows, by name.
// "summary" is only the verdicts, as plain text for a change ticket.
var Formats = []string{"text", "summary", "markdown", "json", "html"}

// Render writes rep in format (one of Formats).
func Render(w io.Writer, format string, rep *Report) error {
	switch format {
	case "text":
		return Text(w, rep)
	case "summary":
		return Summary(w, rep)
	case "markdown":
		return Markdown(w, rep)
	case "json":
		return JSON(w, rep)
	case "html":
		return HTML(w, rep)
	}
	return fmt.Errorf("unknown report format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// WriteFiles writes report.json and report.html into dir (beside the
// journal), each through a temporary file renamed into place so a reader
// never sees half a report.
func WriteFiles(dir string, rep *Report) error {
	for _, f := range []struct{ name, format string }{{"report.json", "json"}, {"report.html", "html"}} {
		if err := WriteFile(filepath.Join(dir, f.name), f.format, rep); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes rep in format to path through a temporary file renamed
// into place: a reader sees the old report or the new one, never half.
func WriteFile(path, format string, rep *Report) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 256<<10)
	err = Render(bw, format, rep)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
