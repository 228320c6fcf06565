package event

import "strings"

// This file is dbprobe's vocabulary: the names events carry in fields that
// users filter, aggregate and alert on. Each list is the one place its names
// are written; metrics, the detector, the report and the docs follow it, and
// tests fail when they do not.

// Datasets (ECS event.dataset). Both go to one Elasticsearch data stream,
// logs-dbprobe-<namespace>, whose data_stream.dataset is "dbprobe".
const (
	// DatasetProbe is the dataset of probe, gap and Blue/Green status
	// events: what was measured.
	DatasetProbe = "dbprobe.probe"
	// DatasetFinding is the dataset of the detector's findings.
	DatasetFinding = "dbprobe.finding"
)

// Signals: what an interruption window is about, in Finding.Signal, the
// report and the "signal" label of metrics.
const (
	SignalRead  = "read"
	SignalWrite = "write"
)

// Signals lists the signals in the order reports show them.
var Signals = []string{SignalRead, SignalWrite}

// Phases of one probe (Failure.Phase, the "phase" label of latency metrics).
const (
	PhaseDNS     = "dns"
	PhaseConnect = "connect"
	PhaseQuery   = "query"
	PhaseWrite   = "write"
)

// Phase is one phase of a probe.
type Phase struct {
	Name string
	// Reconnect says the phase runs only when a connection is made: on
	// every probe of a fresh stream, at the rare reconnects of a pooled one.
	Reconnect bool
	// Latency returns the field of l that holds the phase's duration.
	Latency func(l *Latency) **float64
}

// Phases lists the phases of a probe in the order they run. A new phase
// needs an entry here, its field in Latency, and its rows in docs/events.md
// and docs/metrics.md; tests check all of them.
var Phases = []Phase{
	{Name: PhaseDNS, Reconnect: true, Latency: func(l *Latency) **float64 { return &l.DNS }},
	{Name: PhaseConnect, Reconnect: true, Latency: func(l *Latency) **float64 { return &l.Connect }},
	{Name: PhaseQuery, Latency: func(l *Latency) **float64 { return &l.Query }},
	{Name: PhaseWrite, Latency: func(l *Latency) **float64 { return &l.Write }},
}

// Error classes (error.type and Failure.Class of a failed probe, the
// "class" label of metrics). They are the contract users filter and alert
// on.
const (
	ClassDNSNotFound    = "dns_not_found"
	ClassDNSError       = "dns_error"
	ClassConnectRefused = "connect_refused"
	ClassConnectTimeout = "connect_timeout"
	ClassAuth           = "auth"
	// ClassIAMToken is a failure to make the IAM authentication token:
	// dbprobe could not try the database at all, so it is never counted as
	// the database's fault.
	ClassIAMToken = "iam_token"
	// ClassTLS is a failed TLS handshake: often a certificate the
	// switchover regenerated, or the wrong CA bundle.
	ClassTLS                = "tls"
	ClassOffline            = "offline"
	ClassTooManyConnections = "too_many_connections"
	ClassReadOnly           = "read_only"
	ClassConnLost           = "conn_lost"
	ClassTimeout            = "timeout"
	ClassKilled             = "killed"
	ClassServerError        = "server_error"
	// ClassResultMismatch is a target's read statement that ran but did
	// not return the rows or value its expectation says.
	ClassResultMismatch = "result_mismatch"
	ClassSkipped        = "skipped"
	ClassObserverFault  = "observer_fault"
	ClassOther          = "other"
)

// Class is an error class, what it means, and what to check when a target
// fails that way from its first probe (dbprobe's warning for a stream that
// never answered, the terminal view and the status page show it; empty:
// the error message says more than a hint could).
type Class struct {
	Name        string
	Description string
	Check       string
}

// NotTheDatabase reports whether a failure of class says nothing about the
// database: the probe was not made (skipped), or failed for a reason local
// to dbprobe (observer_fault). Such probes are unknown time, never
// downtime. (iam_token is also dbprobe's side, and the detector reports it
// as a gap of its own.)
func NotTheDatabase(class string) bool {
	return class == ClassSkipped || class == ClassObserverFault
}

// Classes lists every error class with its meaning. A new class needs an
// entry here and its row in docs/probing.md and docs/events.md; tests
// check both.
var Classes = []Class{
	{ClassDNSNotFound, "the name does not exist (NXDOMAIN, or no address)",
		"the endpoint name: its spelling, and that it resolves from this host (dig NAME)"},
	{ClassDNSError, "the resolver failed or did not answer in time",
		"the resolver (dns.server or /etc/resolv.conf) and the network path to it"},
	{ClassConnectRefused, "TCP connection refused or network unreachable",
		"host and port, that the server listens there, and a security group or firewall that rejects"},
	{ClassConnectTimeout, "TCP connect got no answer",
		"the network path: security group and NACL inbound rules for this host, routes, VPN"},
	{ClassAuth, "access denied, or the account is locked",
		"credentials (user, password, password_file, ${VAR}) and grants: SELECT, and INSERT/UPDATE on the write table"},
	{ClassTLS, "the TLS handshake failed: a certificate not signed by a CA dbprobe trusts, without the expected name, or expired; or the server does not offer TLS",
		"tls.ca_file (the RDS bundle for RDS, the system roots for RDS Proxy), tls.server_name against the names in the certificate, and its expiry"},
	{ClassIAMToken, "dbprobe could not make the IAM authentication token (no or expired AWS credentials, STS unreachable), so it did not try the database: a gap, never downtime",
		"the AWS credentials on this host (instance profile, web identity, AWS_* variables), aws.role_arn, and that STS is reachable; dbprobe check shows the identity"},
	{ClassOffline, "the server is in offline mode",
		"the server: it is shutting down or in offline_mode"},
	{ClassTooManyConnections, "the server or the user has too many connections",
		"max_connections on the server and the clients holding connections"},
	{ClassReadOnly, "the server refuses writes: it is read-only",
		"the endpoint: writes reach a read-only server (a reader or replica endpoint?)"},
	{ClassConnLost, "connection closed or reset, bad or invalid connection, EOF",
		"the server's error log and anything between (proxy, load balancer idle timeouts)"},
	{ClassTimeout, "the probe's deadline passed",
		"timeout against the server's latency, and locks on the write table"},
	{ClassKilled, "the query or connection was killed, or the server is shutting down",
		"who kills the probe's queries (a query killer, pt-kill, an operator)"},
	{ClassServerError, "any other MySQL error (its number is kept)",
		"the error message: the write table exists and the statements are allowed"},
	{ClassResultMismatch, "the target's read statement answered, but not with the rows or value read.expect_rows / read.expect_value say",
		"the read statement and its expectation against what the database holds: run it by hand on the endpoint"},
	{ClassSkipped, "the tick could not start: earlier probes of the stream are still running past their deadline, or the target's probes fill its share of dbprobe's in-flight budget (the message says which)",
		"what makes probes hang past their deadline: the server, or the network path to it; when the message names the target's share of the budget, the descriptor limit (LimitNOFILE) against the number of targets"},
	{ClassObserverFault, "the probe could not be made for a reason local to dbprobe (out of file descriptors, socket buffers, memory or local ports): the observer's fault, an unknown outcome, never downtime",
		"dbprobe's own host: descriptors (ulimit -n, LimitNOFILE), memory, local ports; alert DBProbeObserverFault"},
	{ClassOther, "anything else", "the error message"},
}

// Blue/Green phases (BlueGreen.Phase), named as the AWS drivers name them.
const (
	BlueGreenNotCreated  = "NOT_CREATED"
	BlueGreenCreated     = "CREATED"
	BlueGreenPreparation = "PREPARATION"
	BlueGreenInProgress  = "IN_PROGRESS"
	BlueGreenPost        = "POST"
	BlueGreenCompleted   = "COMPLETED"
)

// BlueGreenPhase is a phase of an RDS Blue/Green deployment.
type BlueGreenPhase struct {
	Name string
	// Status is the value of the status column of mysql.rds_topology that
	// means the phase; empty where no row does.
	Status string
	// Label is how the live status page names the phase.
	Label string
}

// BlueGreenPhases lists the phases in the order a switchover goes through
// them: a phase's index is its rank (a lower rank after a higher one is a
// rollback) and the value of dbprobe_bluegreen_phase.
var BlueGreenPhases = []BlueGreenPhase{
	{BlueGreenNotCreated, "", "none"},
	{BlueGreenCreated, "AVAILABLE", "available"},
	{BlueGreenPreparation, "SWITCHOVER_INITIATED", "switchover initiated"},
	{BlueGreenInProgress, "SWITCHOVER_IN_PROGRESS", "switchover in progress"},
	{BlueGreenPost, "SWITCHOVER_IN_POST_PROCESSING", "post-processing"},
	{BlueGreenCompleted, "SWITCHOVER_COMPLETED", "completed"},
}

// BlueGreenRank returns the rank of a Blue/Green phase given by its name or
// its rds_topology status, in any case; ok is false for one dbprobe does
// not know.
func BlueGreenRank(s string) (rank int, ok bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	for i, p := range BlueGreenPhases {
		if s == p.Name || s != "" && s == p.Status {
			return i, true
		}
	}
	return -1, false
}

// BlueGreenUnderway reports whether a phase rank belongs to a running
// switchover: from PREPARATION up to, not including, COMPLETED.
func BlueGreenUnderway(rank int) bool {
	from, _ := BlueGreenRank(BlueGreenPreparation)
	to, _ := BlueGreenRank(BlueGreenCompleted)
	return rank >= from && rank < to
}

// BlueGreenOfStatus returns the phase an rds_topology status means, in any
// case; ok is false for a status dbprobe does not know.
func BlueGreenOfStatus(status string) (phase string, rank int, ok bool) {
	status = strings.ToUpper(status)
	for i, p := range BlueGreenPhases {
		if status != "" && status == p.Status {
			return p.Name, i, true
		}
	}
	return "", -1, false
}

// Check says what to check for an error class.
func Check(class string) string {
	for _, c := range Classes {
		if c.Name == class && c.Check != "" {
			return c.Check
		}
	}
	return "the error message"
}
