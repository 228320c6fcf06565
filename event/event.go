// Package event defines the one record every part of dbprobe speaks: a probe
// result or a finding, as written to the journal, shipped to Elasticsearch and
// read back by the detector and the report. Field names follow the Elastic
// Common Schema where ECS has a field for the fact; everything specific to
// dbprobe lives under "dbprobe". docs/events.md lists every field.
package event

import (
	"fmt"
	"time"
)

// Schema is the version of the event layout; it is written into every event so
// readers can refuse (or adapt to) journals written by a different layout.
const Schema = 1

// Kinds (ECS event.kind).
const (
	// KindEvent is a probe result or a gap: something that was measured.
	KindEvent = "event"
	// KindState is a finding of the detector: a window opened or closed, a
	// read-only transition, a cutover, a DNS change, a Blue/Green phase change.
	KindState = "state"
)

// Actions (ECS event.action). Probe and gap events are written by the probe
// loop; the others by the detector and the Blue/Green poller.
const (
	ActionProbe = "probe"
	ActionGap   = "gap"
	// ActionBlueGreenStatus records what the Blue/Green poller read from
	// mysql.rds_topology, each time it changes.
	ActionBlueGreenStatus = "bluegreen_status"
	// ActionAWSEvent records what AWS itself said about the database: an
	// RDS event (DescribeEvents) or a Blue/Green deployment's status
	// (DescribeBlueGreenDeployments), polled beside the probes.
	ActionAWSEvent = "aws_event"
)

// Finding actions (event.kind "state"), written by the detector.
// docs/report.md says what each one carries in dbprobe.finding.
const (
	ActionReadWindowOpened  = "read_window_opened"
	ActionReadWindowClosed  = "read_window_closed"
	ActionWriteWindowOpened = "write_window_opened"
	ActionWriteWindowClosed = "write_window_closed"
	ActionReadOnlyOn        = "read_only_on"
	ActionReadOnlyOff       = "read_only_off"
	ActionCutover           = "cutover"
	ActionDNSChange         = "dns_change"
	ActionStaleStarted      = "stale_started"
	ActionStaleEnded        = "stale_ended"
	ActionBlueGreenPhase    = "bluegreen_phase"
)

// Outcomes (ECS event.outcome).
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeUnknown = "unknown"
)

// Modes of probing a target.
const (
	ModeFresh  = "fresh"
	ModePooled = "pooled"
)

// Event is one journal line and one Elasticsearch document.
type Event struct {
	Timestamp   time.Time         `json:"@timestamp"`
	Message     string            `json:"message,omitempty"`
	Event       Meta              `json:"event"`
	Error       *Error            `json:"error,omitempty"`
	Observer    Observer          `json:"observer"`
	Labels      map[string]string `json:"labels,omitempty"`
	Destination *Destination      `json:"destination,omitempty"`
	DBProbe     DBProbe           `json:"dbprobe"`
}

// Meta holds the ECS event.* fields.
type Meta struct {
	// ID is deterministic: the same probe or finding always gets the same ID,
	// so a replay to Elasticsearch never duplicates a document.
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Category []string  `json:"category,omitempty"`
	Type     []string  `json:"type,omitempty"`
	Dataset  string    `json:"dataset"`
	Action   string    `json:"action"`
	Outcome  string    `json:"outcome,omitempty"`
	Duration int64     `json:"duration,omitempty"` // nanoseconds, as ECS wants
	Sequence uint64    `json:"sequence"`           // assigned by the journal, strictly increasing per journal
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
}

// Error is the ECS error.* group. Type is dbprobe's error class, Code the
// MySQL error number (as ECS keeps codes as keywords), Message the driver's
// message with secrets removed.
type Error struct {
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Observer identifies the dbprobe instance that made the event.
type Observer struct {
	Name     string `json:"name"`
	Hostname string `json:"hostname,omitempty"`
	Type     string `json:"type"` // always "poller"
	Product  string `json:"product"`
	Version  string `json:"version,omitempty"`
}

// Destination is where the probe went: the endpoint name it resolved and the
// address it actually connected to.
type Destination struct {
	Address string `json:"address,omitempty"` // ip:port connected to
	IP      string `json:"ip,omitempty"`
	Port    int    `json:"port,omitempty"`
	Domain  string `json:"domain,omitempty"` // endpoint name as configured
}

// DBProbe holds everything that has no ECS home.
type DBProbe struct {
	Schema int    `json:"schema"`
	RunID  string `json:"run_id"`
	Target string `json:"target,omitempty"`
	Mode   string `json:"mode,omitempty"`

	// Probe events.
	Tick        int64      `json:"tick,omitempty"`
	Scheduled   time.Time  `json:"scheduled,omitzero"`
	LagMS       *float64   `json:"schedule_lag_ms,omitempty"`
	Latency     *Latency   `json:"latency_ms,omitempty"`
	DNS         *DNS       `json:"dns,omitempty"`
	Server      *Server    `json:"server,omitempty"`
	Read        *Outcome   `json:"read,omitempty"`
	Write       *Outcome   `json:"write,omitempty"`
	Failure     *Failure   `json:"failure,omitempty"`
	Gap         *Gap       `json:"gap,omitempty"`
	Replication *Replicate `json:"replication,omitempty"`
	BlueGreen   *BlueGreen `json:"bluegreen,omitempty"`
	AWS         *AWSEvent  `json:"aws,omitempty"`

	// Finding events.
	Finding *Finding `json:"finding,omitempty"`
}

// Latency per phase in milliseconds; a nil phase did not run. Phases lists
// the phases and which field holds each.
type Latency struct {
	DNS     *float64 `json:"dns,omitempty"`
	Connect *float64 `json:"connect,omitempty"`
	Query   *float64 `json:"query,omitempty"`
	Write   *float64 `json:"write,omitempty"`
	// Replica is the read of the heartbeat row on the green side, when a
	// green endpoint is configured. It runs after the probe, under its own
	// deadline, and is not part of Total.
	Replica *float64 `json:"replica,omitempty"`
	Total   float64  `json:"total"`
}

// DNS is what the resolver answered for the endpoint name.
type DNS struct {
	Name    string   `json:"name"`
	Server  string   `json:"server,omitempty"` // resolver asked; empty = system resolver
	Answers []string `json:"answers,omitempty"`
	CNAME   string   `json:"cname,omitempty"`
	TTL     *uint32  `json:"ttl,omitempty"` // seconds, when the resolver tells
	Rcode   string   `json:"rcode,omitempty"`
}

// Server is the identity and state of the server that answered. Fields a
// server does not have are absent, never zero.
type Server struct {
	// Identity is the single string the detector compares to spot a cutover:
	// the server's UUID or Aurora id where it has one, else
	// hostname/server_id/port. See docs/events.md.
	Identity       string `json:"identity"`
	Hostname       string `json:"hostname,omitempty"`
	ServerID       *int64 `json:"server_id,omitempty"`
	ServerUUID     string `json:"server_uuid,omitempty"`
	AuroraServerID string `json:"aurora_server_id,omitempty"`
	Port           *int64 `json:"port,omitempty"`
	Version        string `json:"version,omitempty"`
	VersionComment string `json:"version_comment,omitempty"`
	ReadOnly       *bool  `json:"read_only,omitempty"`
	SuperReadOnly  *bool  `json:"super_read_only,omitempty"`
	InnoDBReadOnly *bool  `json:"innodb_read_only,omitempty"`
	// Role is the Aurora instance's role, RoleWriter or RoleReader, from
	// innodb_read_only (OFF on the writer, ON on readers); absent on
	// servers that are not Aurora, whose read-only flags say less.
	Role string `json:"role,omitempty"`
	// Address is the ip:port this answer came over (equal to
	// destination.address on probe events; kept here so findings can carry it).
	Address string `json:"address,omitempty"`
}

// Aurora instance roles (Server.Role).
const (
	RoleWriter = "writer"
	RoleReader = "reader"
)

// AnyReadOnly reports whether the server says it refuses writes in any of the
// ways MySQL-family servers can.
func (s *Server) AnyReadOnly() bool {
	if s == nil {
		return false
	}
	return isTrue(s.ReadOnly) || isTrue(s.SuperReadOnly) || isTrue(s.InnoDBReadOnly)
}

func isTrue(b *bool) bool { return b != nil && *b }

// Outcome of the read or write part of a probe.
type Outcome struct {
	OK bool `json:"ok"`
}

// Failure says where a probe failed: the error class (one of Classes, also in
// error.type), the phase it failed in (one of Phases), and the MySQL error
// number when there was one.
type Failure struct {
	Class  string `json:"class"`
	Phase  string `json:"phase"`
	Number uint16 `json:"number,omitempty"`
}

// ObserverFault reports whether the probe failed for a reason local to
// dbprobe (ClassObserverFault): it says nothing about the database, and
// counts as an unknown outcome, never as downtime. Nil-safe.
func (f *Failure) ObserverFault() bool { return f != nil && f.Class == ClassObserverFault }

// Gap describes ticks that could not be run because the process itself did
// not run (paused, starved, clock jump). Their outcome is unknown.
type Gap struct {
	FirstTick int64     `json:"first_tick"`
	LastTick  int64     `json:"last_tick"`
	Ticks     int64     `json:"ticks"`
	From      time.Time `json:"from"` // scheduled time of the first missed tick
	To        time.Time `json:"to"`   // scheduled time of the tick that did run
}

// Replicate carries replication lag measured against the target's green
// endpoint, when one is configured.
type Replicate struct {
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// BlueGreen carries the Blue/Green switchover phase seen in mysql.rds_topology.
type BlueGreen struct {
	// Phase is the phase name the AWS drivers use, one of BlueGreenPhases.
	Phase string `json:"phase"`
	// Status is the raw status column it was derived from.
	Status string `json:"status,omitempty"`
	// Rows is the table as read, one "role status endpoint:port" per row.
	Rows []string `json:"rows,omitempty"`
}

// AWSEvent is what AWS said: an RDS event or a Blue/Green deployment's
// status. AWS's events carry no id, only these fields.
type AWSEvent struct {
	// SourceType is RDS's: db-instance, db-cluster, blue-green-deployment.
	SourceType string `json:"source_type"`
	SourceID   string `json:"source_id"`
	SourceARN  string `json:"source_arn,omitempty"`
	// Message is AWS's text, e.g. "Started cross AZ failover to DB
	// instance: orders-2".
	Message    string   `json:"message"`
	Categories []string `json:"categories,omitempty"`
	// Date is when AWS says it happened; for a deployment status, when
	// dbprobe read it.
	Date time.Time `json:"date"`
	// Status is a Blue/Green deployment's status (SWITCHOVER_IN_PROGRESS,
	// ...), set only on status events.
	Status string `json:"status,omitempty"`
}

// Finding is a detector result. Which fields are set depends on
// event.action; docs/events.md lists them per action.
type Finding struct {
	Signal    string         `json:"signal,omitempty"` // SignalRead or SignalWrite for windows
	Start     *time.Time     `json:"start,omitempty"`
	End       *time.Time     `json:"end,omitempty"`
	At        *time.Time     `json:"at,omitempty"`
	Earliest  *time.Time     `json:"earliest,omitempty"`
	Latest    *time.Time     `json:"latest,omitempty"`
	Duration  *float64       `json:"duration_seconds,omitempty"`
	Min       *float64       `json:"min_seconds,omitempty"`
	Max       *float64       `json:"max_seconds,omitempty"`
	Probes    int64          `json:"probes,omitempty"`
	Errors    map[string]int `json:"errors,omitempty"`
	From      *Server        `json:"from,omitempty"`
	To        *Server        `json:"to,omitempty"`
	FromAddrs []string       `json:"from_addrs,omitempty"`
	ToAddrs   []string       `json:"to_addrs,omitempty"`
	Server    *Server        `json:"server,omitempty"`
	Phase     string         `json:"phase,omitempty"`
	PrevPhase string         `json:"prev_phase,omitempty"`
	Rollback  bool           `json:"rollback,omitempty"`
	Writes    *int64         `json:"failed_writes,omitempty"`
	// OKWrites counts writes the old server accepted during a stale episode.
	OKWrites *int64     `json:"ok_writes,omitempty"`
	Last     *time.Time `json:"last,omitempty"` // last failed, read-only or stale probe
	// Begins and Ends say what bounds a window or episode: begins
	// "after_success", "at_first_probe" or "after_gap"; ends "recovered",
	// "gap" or "open".
	Begins    string `json:"begins,omitempty"`
	Ends      string `json:"ends,omitempty"`
	AcrossGap bool   `json:"across_gap,omitempty"` // a gap lies between earliest and latest
	Reason    string `json:"reason,omitempty"`     // why a stream is stale: "server", "address"
	// The brackets of a window's or stretch's edges: the true start lies
	// in [StartEarliest, StartLatest], the true end in [EndEarliest,
	// EndLatest]; Start and End are the estimates.
	StartEarliest *time.Time `json:"start_earliest,omitempty"`
	StartLatest   *time.Time `json:"start_latest,omitempty"`
	EndEarliest   *time.Time `json:"end_earliest,omitempty"`
	EndLatest     *time.Time `json:"end_latest,omitempty"`
	// Unknown is time inside a window in which dbprobe could not probe.
	Unknown *float64 `json:"unknown_seconds,omitempty"`
}

// StreamKey identifies one stream of probes: observer x target x mode.
type StreamKey struct {
	Observer string
	Target   string
	Mode     string
}

func (k StreamKey) String() string { return k.Observer + "/" + k.Target + "/" + k.Mode }

// Key returns the stream the event belongs to.
func (e *Event) Key() StreamKey {
	return StreamKey{Observer: e.Observer.Name, Target: e.DBProbe.Target, Mode: e.DBProbe.Mode}
}

// ProbeID is the deterministic event.id of a probe (or gap) event.
func ProbeID(runID, observer, target, mode string, tick int64) string {
	return fmt.Sprintf("%s/%s/%s/%s/%d", runID, observer, target, mode, tick)
}
