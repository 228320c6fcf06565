package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Scenarios the lab runs. Blue/Green is the default; the others reuse the
// same two servers (blue is the writer, green its replica) and DNS zone.
const (
	ScenarioBlueGreen = "bluegreen" // an RDS Blue/Green switchover (Switchover)
	ScenarioFailover  = "failover"  // the writer dies, the replica is promoted, DNS moves (Failover)
	ScenarioReboot    = "reboot"    // the writer restarts in place (Reboot)
	ScenarioProxy     = "proxy"     // a connection-holding proxy moves its clients to green (ProxySwitch)
)

// Scenarios lists every scenario, the default first.
var Scenarios = []string{ScenarioBlueGreen, ScenarioFailover, ScenarioReboot, ScenarioProxy}

// CheckScenario reports a scenario name the lab does not know.
func CheckScenario(name string) error {
	if slices.Contains(Scenarios, name) {
		return nil
	}
	return fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(Scenarios, ", "))
}

// Steps of the failover, reboot and proxy scenarios (StepDNSSwitched,
// StepBlueReadOnly and StepCaughtUp are shared with the switchover).
const (
	StepWriterKilled    = "writer_killed"    // SIGKILL of blue, the writer
	StepWriterFrozen    = "writer_frozen"    // SIGSTOP of blue: it stops answering, its sockets stay open
	StepReplicaPromoted = "replica_promoted" // STOP SLAVE; RESET SLAVE ALL; read_only=0 on green
	StepWriterStopping  = "writer_stopping"  // SIGTERM to blue; at: its port refuses connections
	StepWriterStopped   = "writer_stopped"   // blue's mariadbd exited
	StepWriterStarted   = "writer_started"   // blue runs again on the same datadir and port; at: it accepts logins
	StepProxyPaused     = "proxy_paused"     // the proxy holds new connections and commands
	StepProxyResumed    = "proxy_resumed"    // the proxy sends what it held, and everything after, to green
)

// OutcomeRestarted is the outcome of a reboot: the writer is back, the same
// server as before.
const OutcomeRestarted = "restarted"

// FailoverOptions are the knobs of the failover scenario.
type FailoverOptions struct {
	// PromoteDelay runs from the writer's death to the replica's promotion:
	// failure detection and promotion (RDS Multi-AZ: most of its 60-120 s;
	// Aurora: most of its under 30-60 s).
	PromoteDelay time.Duration `json:"promote_delay"`
	// DNSDelay runs from the promotion to the endpoint name answering the
	// new writer.
	DNSDelay time.Duration `json:"dns_delay"`
	// Hang freezes the writer (SIGSTOP) instead of killing it: it stops
	// answering while its sockets stay open, as AWS fences a failed writer,
	// so clients time out instead of being refused.
	Hang bool `json:"hang,omitempty"`
}

// DefaultFailover returns the failover knobs: AWS's timings compressed.
func DefaultFailover() FailoverOptions {
	return FailoverOptions{PromoteDelay: time.Second, DNSDelay: 2 * time.Second}
}

// Validate reports knobs that cannot be run.
func (o FailoverOptions) Validate() error {
	return nonNegative(knob{"promote-delay", o.PromoteDelay}, knob{"failover-dns-delay", o.DNSDelay})
}

// RebootOptions are the knobs of the reboot scenario.
type RebootOptions struct {
	// Down is how long the writer stays stopped before it starts again; its
	// start (InnoDB recovery, about a second) adds to it.
	Down time.Duration `json:"down"`
}

// DefaultReboot returns the reboot knobs.
func DefaultReboot() RebootOptions { return RebootOptions{Down: time.Second} }

// Validate reports knobs that cannot be run.
func (o RebootOptions) Validate() error { return nonNegative(knob{"down", o.Down}) }

// ProxyOptions are the knobs of the proxy scenario.
type ProxyOptions struct {
	// Pause is how long the proxy holds traffic, from the pause to the
	// resume on green (at least what blue's read-only switch, green's
	// catch-up and promotion take).
	Pause time.Duration `json:"pause"`
	// MaxPause is how long the proxy holds one connection or command at
	// most before it drops it (RDS Proxy's ConnectionBorrowTimeout,
	// default 120 s).
	MaxPause time.Duration `json:"max_pause"`
}

// DefaultProxy returns the proxy knobs: a pause shorter than dbprobe's probe
// timeout in the lab, so probes stall and none fails.
func DefaultProxy() ProxyOptions {
	return ProxyOptions{Pause: time.Second, MaxPause: 10 * time.Second}
}

// Validate reports knobs that cannot be run.
func (o ProxyOptions) Validate() error {
	err := nonNegative(knob{"pause", o.Pause})
	if o.MaxPause <= 0 {
		err = errors.Join(err, fmt.Errorf("max-pause must be positive (got %v)", o.MaxPause))
	}
	return err
}

type knob struct {
	name string
	v    time.Duration
}

func nonNegative(ks ...knob) error {
	var errs []error
	for _, k := range ks {
		if k.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative (got %v)", k.name, k.v))
		}
	}
	return errors.Join(errs...)
}

// Failover kills the writer (blue) as a crash does, or freezes it (Hang),
// promotes its replica (green) after PromoteDelay and moves the endpoint
// name to it DNSDelay later, as a Multi-AZ or Aurora failover does, and
// returns the ground truth. Until the DNS move, fresh connections are
// refused (or hang); established ones break (or hang). Blue stays down.
func (l *Lab) Failover(ctx context.Context, o FailoverOptions, progress func(Step)) (*Truth, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	if l.proxy != nil {
		return nil, errors.New("failover: this lab has a proxy in front; start one without it")
	}
	s, done, err := l.begin("failover", ScenarioFailover, progress)
	if err != nil {
		return nil, err
	}
	defer done()
	s.truth.Failover = &o
	s.truth.Outcome = OutcomeFailed
	died, how, die := StepWriterKilled, "SIGKILL", l.blue.Kill
	if o.Hang {
		died, how, die = StepWriterFrozen, "SIGSTOP: connections hang", l.blue.Freeze
	}
	if err := s.do(died, func() (string, error) { return how, die() }); err != nil {
		return s.truth, err
	}
	l.markSwitched()
	if err := s.wait(ctx, s.truth.At(died).Add(o.PromoteDelay)); err != nil {
		return s.truth, err
	}
	if err := s.do(StepReplicaPromoted, func() (string, error) {
		return "", l.green.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0")
	}); err != nil {
		return s.truth, err
	}
	if err := s.wait(ctx, s.truth.At(StepReplicaPromoted).Add(o.DNSDelay)); err != nil {
		return s.truth, err
	}
	if err := s.do(StepDNSSwitched, func() (string, error) {
		if l.fwd != nil {
			l.fwd.setRoute(l.green.Addr())
			return "new connections -> green", nil
		}
		return EndpointName + " -> green", l.dns.SetA(EndpointName, TTL, l.greenIP())
	}); err != nil {
		return s.truth, err
	}
	s.truth.Outcome = OutcomeSwitched
	return s.truth, nil
}

// Reboot shuts the writer (blue) down cleanly, keeps it down for Down and
// starts it again on the same datadir, address and port, as an RDS reboot
// does, and returns the ground truth. It is the same server before and
// after: no cutover, no DNS change.
func (l *Lab) Reboot(ctx context.Context, o RebootOptions, progress func(Step)) (*Truth, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("reboot: %w", err)
	}
	s, done, err := l.begin("reboot", ScenarioReboot, progress)
	if err != nil {
		return nil, err
	}
	defer done()
	s.truth.Reboot = &o
	s.truth.Outcome = OutcomeFailed
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- l.blue.Stop() }()
	// The clients' view of the shutdown begins when the server stops
	// accepting; exiting (InnoDB's shutdown) takes longer.
	if err := awaitRefused(ctx, l.blue.Addr(), stopped); err != nil {
		return s.truth, fmt.Errorf("reboot: %w", errors.Join(err, <-stopped))
	}
	s.record(Step{Name: StepWriterStopping, Start: start, At: time.Now(), Detail: "SIGTERM; the port refuses connections"})
	start = time.Now()
	if err := <-stopped; err != nil {
		return s.truth, fmt.Errorf("reboot: %w", err)
	}
	s.record(Step{Name: StepWriterStopped, Start: start, At: time.Now()})
	if err := s.wait(ctx, s.truth.At(StepWriterStopped).Add(o.Down)); err != nil {
		return s.truth, err
	}
	if err := s.do(StepWriterStarted, func() (string, error) {
		return "same datadir, address and port", l.blue.Restart(ctx)
	}); err != nil {
		return s.truth, err
	}
	s.truth.Outcome = OutcomeRestarted
	return s.truth, nil
}

// awaitRefused returns once addr refuses TCP connections or stopped has a
// value (the server exited), whichever comes first; an exit is put back.
func awaitRefused(ctx context.Context, addr string, stopped chan error) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		select {
		case err := <-stopped:
			stopped <- err
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ProxySwitch moves the proxy's clients from blue to green, as RDS Proxy
// does during a failover or switchover, and returns the ground truth: the
// proxy pauses (holding new connections and commands), blue turns
// read-only, green catches up and is promoted, and Pause after the pause
// the proxy resumes on green. Clients stay connected; a command held
// longer than MaxPause is dropped with its connection.
func (l *Lab) ProxySwitch(ctx context.Context, o ProxyOptions, progress func(Step)) (*Truth, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("proxy switch: %w", err)
	}
	if l.proxy == nil {
		return nil, errors.New("proxy switch: this lab has no proxy in front (lab.Options.Proxy)")
	}
	s, done, err := l.begin("proxy switch", ScenarioProxy, progress)
	if err != nil {
		return nil, err
	}
	defer done()
	s.truth.Proxy = &o
	s.truth.Outcome = OutcomeFailed
	if err := s.do(StepProxyPaused, func() (string, error) {
		l.proxy.pause(o.MaxPause)
		return fmt.Sprintf("holding each connection and command at most %v", o.MaxPause), nil
	}); err != nil {
		return s.truth, err
	}
	// From here on the proxy must resume, whatever fails: it would hold
	// its clients until they give up.
	resume := func() (string, error) {
		released, dropped := l.proxy.resumeTo(l.green.Addr())
		return fmt.Sprintf("%d held released to green, %d dropped after the maximum pause", released, dropped), nil
	}
	failed := func(err error) (*Truth, error) {
		detail, _ := resume()
		s.record(Step{Name: StepProxyResumed, Start: time.Now(), At: time.Now(), Detail: detail + " (after a failure)"})
		return s.truth, err
	}
	if err := s.do(StepBlueReadOnly, func() (string, error) {
		return "", l.blue.Exec(ctx, "SET GLOBAL read_only=1")
	}); err != nil {
		return failed(err)
	}
	if err := s.do(StepCaughtUp, func() (string, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return "", l.green.CatchUp(cctx, l.blue)
	}); err != nil {
		return failed(err)
	}
	if err := s.do(StepReplicaPromoted, func() (string, error) {
		return "", l.green.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0")
	}); err != nil {
		return failed(err)
	}
	l.markSwitched()
	if err := s.wait(ctx, s.truth.At(StepProxyPaused).Add(o.Pause)); err != nil {
		return failed(err)
	}
	if err := s.do(StepProxyResumed, resume); err != nil {
		return s.truth, err
	}
	s.truth.Outcome = OutcomeSwitched
	return s.truth, nil
}

// markSwitched records that green is (or is about to be) the writer: the
// lab runs no other scenario after it.
func (l *Lab) markSwitched() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.switched = true
}
