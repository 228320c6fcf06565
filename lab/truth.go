package lab

import (
	"fmt"
	"io"
	"time"
)

// Step names, in the order a switchover runs them. Ground truth holds one
// Step per action taken.
const (
	StepInitiated         = "initiated"          // mysql.rds_topology SWITCHOVER_INITIATED, both sides
	StepGuardrails        = "guardrails"         // replication running, lag under the limit, no long transaction on blue
	StepLagInjected       = "lag_injected"       // green's SQL thread stopped and a row written on blue
	StepInProgress        = "in_progress"        // SWITCHOVER_IN_PROGRESS, both sides
	StepLockTaken         = "lock_taken"         // with LockWait: FLUSH TABLES WITH READ LOCK on blue; writes wait
	StepBlueReadOnly      = "blue_read_only"     // SET GLOBAL read_only=1 on blue
	StepLoginsRefused     = "logins_refused"     // ACCOUNT LOCK of the probe user, both sides
	StepConnectionsKilled = "connections_killed" // KILL CONNECTION of every probe session, both sides
	StepBlueFrozen        = "blue_frozen"        // with Freeze: SIGSTOP of blue's mariadbd; clients hang
	StepBlueThawed        = "blue_thawed"        // SIGCONT of blue's mariadbd
	StepCatchUpStarted    = "catch_up_started"   // the hold is over; waiting for green
	StepLagReleased       = "lag_released"       // green's SQL thread started again
	StepCaughtUp          = "caught_up"          // MASTER_GTID_WAIT returned 0
	StepReplicationStop   = "replication_stopped"
	StepLoginsAccepted    = "logins_accepted" // ACCOUNT UNLOCK, both sides
	StepGreenWritable     = "green_writable"  // SET GLOBAL read_only=0 on green
	StepPost              = "post_processing" // SWITCHOVER_IN_POST_PROCESSING, both sides; blue's metadata stops here
	StepDNSSwitched       = "dns_switched"    // the endpoint name answers green, blue gets the -old1 name
	StepGreenNameRemoved  = "green_name_removed"
	StepCompleted         = "completed" // SWITCHOVER_COMPLETED on green

	// Rollback: the catch-up timed out and every action is undone in
	// reverse order.
	StepCatchUpTimedOut      = "catch_up_timed_out"
	StepRollbackLoginsOK     = "rollback_logins_accepted"
	StepRollbackBlueWritable = "rollback_blue_writable"
	StepRollbackReplResumed  = "rollback_replication_resumed"
	StepRollbackAvailable    = "rollback_available" // AVAILABLE again, both sides
	StepGuardrailsRefused    = "guardrails_refused"
	StepProbingStopped       = "probing_stopped" // dbprobe stopped (Run only)
)

// Outcomes of a switchover (Truth.Outcome).
const (
	OutcomeSwitched   = "switched"
	OutcomeRolledBack = "rolled_back"
	OutcomeRefused    = "refused"
	OutcomeFailed     = "failed"
)

// Step is one action of the switchover. Start is taken right before the
// action, At right after it returned: from At on, the action is in effect
// for every client, and it is the instant a boundary is compared with.
type Step struct {
	Name   string    `json:"name"`
	Start  time.Time `json:"start"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// Truth is the ground truth of one switchover.
type Truth struct {
	// Scenario is what the lab ran (ScenarioBlueGreen when empty), and the
	// options field of its name its knobs.
	Scenario string             `json:"scenario,omitempty"`
	Options  *SwitchoverOptions `json:"options,omitempty"`
	Failover *FailoverOptions   `json:"failover,omitempty"`
	Reboot   *RebootOptions     `json:"reboot,omitempty"`
	Proxy    *ProxyOptions      `json:"proxy,omitempty"`
	Blue     string             `json:"blue"`  // address of blue (the writer)
	Green    string             `json:"green"` // address of green (the replica)
	// Outcome is one of the Outcome constants: switched, rolled back (the
	// catch-up timed out), refused (a guardrail failed) or failed (an action
	// failed; the error says which, and the steps how far it got).
	Outcome string `json:"outcome"`
	Steps   []Step `json:"steps"`
}

// Step returns the step called name.
func (t *Truth) Step(name string) (Step, bool) {
	for _, s := range t.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// At is when step name took effect (zero if it did not happen).
func (t *Truth) At(name string) time.Time {
	s, _ := t.Step(name)
	return s.At
}

// Switched reports whether green became production.
func (t *Truth) Switched() bool { return t.Outcome == OutcomeSwitched }

// RolledBack reports whether the catch-up timed out and the switchover was
// undone.
func (t *Truth) RolledBack() bool { return t.Outcome == OutcomeRolledBack }

// WriteText prints the steps with their offsets from the first one.
func (t *Truth) WriteText(w io.Writer) error {
	if len(t.Steps) == 0 {
		_, err := fmt.Fprintln(w, "no step taken")
		return err
	}
	t0 := t.Steps[0].At
	for _, s := range t.Steps {
		if err := writeStep(w, t0, s); err != nil {
			return err
		}
	}
	return nil
}

func writeStep(w io.Writer, t0 time.Time, s Step) error {
	took := s.At.Sub(s.Start)
	line := fmt.Sprintf("  %s  %+8.3fs  %-28s", s.At.UTC().Format("15:04:05.000"), s.At.Sub(t0).Seconds(), s.Name)
	if took >= time.Millisecond {
		line += fmt.Sprintf(" (took %s)", took.Round(time.Millisecond))
	}
	if s.Detail != "" {
		line += "  " + s.Detail
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
