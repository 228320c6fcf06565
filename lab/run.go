package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dbprobe/dbprobe/analysis"
	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/daemon"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// RunOptions configure Run.
type RunOptions struct {
	// Dir is the lab's directory (required); see docs/lab.md for its
	// layout.
	Dir string
	// Interval is dbprobe's probe interval; default DefaultInterval.
	Interval time.Duration
	// Scenario is what to run (one of Scenarios); default
	// ScenarioBlueGreen. Only the options of its name are used.
	Scenario   string
	Switchover SwitchoverOptions
	Failover   FailoverOptions
	Reboot     RebootOptions
	Proxy      ProxyOptions
	// Tail is how long dbprobe keeps probing after the last step; default
	// max(1 s, 10 intervals).
	Tail time.Duration
	// Slack is the comparison's slack; default DefaultSlack.
	Slack time.Duration
	// SinglePort forces the fallback for machines without loopback
	// aliases (see Options).
	SinglePort bool
	// Logger receives the lab's records; DaemonLogger dbprobe's own. Nil
	// discards.
	Logger       *slog.Logger
	DaemonLogger *slog.Logger
	// Version is dbprobe's version, recorded in its events.
	Version string
	// Observers, when more than one, runs a dbprobe per name, each with
	// its own journal (JournalDir for the first, JournalDir-NAME for the
	// others) and one shared run id, and reports their journals merged,
	// as `dbprobe report --journal A --journal B` does. Empty: one
	// dbprobe named as the config says.
	Observers []string
	// Progress, if not nil, is called after every step, from the goroutine
	// that called Run.
	Progress func(Step)
}

// Result is what a lab run produced.
type Result struct {
	Truth      *Truth
	Report     *report.Report
	Comparison *Comparison
	// Paths of the files the run left in its directory.
	ConfigFile string
	JournalDir string
	ReportHTML string
	TruthFile  string
	// Elapsed is the whole run, servers' start to report.
	Elapsed time.Duration
	// Journals are the journal directories of every observer, JournalDir
	// first.
	Journals []string
}

// readyTimeout bounds the wait for dbprobe's first good probes.
const readyTimeout = time.Minute

// Run starts a lab, runs dbprobe against it in this process, performs a
// switchover, stops dbprobe and compares its report with the ground truth.
// The servers are stopped before Run returns; the directory is left in
// place. An error means the run itself failed; a comparison that does not
// hold is reported in Result.Comparison, not as an error.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	began := time.Now()
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Tail == 0 {
		o.Tail = max(time.Second, 10*o.Interval)
	}
	if o.Scenario == "" {
		o.Scenario = ScenarioBlueGreen
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if o.Progress == nil {
		o.Progress = func(Step) {}
	}
	blueGreen := o.Scenario == ScenarioBlueGreen
	l, err := Start(ctx, Options{Dir: o.Dir, Logger: o.Logger, SinglePort: o.SinglePort, Proxy: o.Scenario == ScenarioProxy})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	res := &Result{
		ConfigFile: filepath.Join(l.Dir(), "dbprobe.yaml"),
		JournalDir: filepath.Join(l.Dir(), "dbprobe-data"),
		TruthFile:  filepath.Join(l.Dir(), "truth.json"),
	}
	res.ReportHTML = filepath.Join(res.JournalDir, "report.html")
	if err := l.WriteConfig(res.ConfigFile, ConfigOptions{Interval: o.Interval, JournalDir: res.JournalDir, NoBlueGreen: !blueGreen}); err != nil {
		return nil, err
	}
	cfg, err := config.LoadFile(res.ConfigFile, func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("lab: the generated dbprobe config does not load: %w", err)
	}
	parts := []string{event.ModeFresh, event.ModePooled}
	if blueGreen {
		parts = append(parts, readyBlueGreen)
	}
	cfgs := []*config.Config{cfg}
	res.Journals = []string{res.JournalDir}
	if len(o.Observers) > 1 {
		if cfg.RunID == "" {
			cfg.RunID = "lab-" + time.Now().UTC().Format("20060102T150405Z")
		}
		cfgs = nil
		res.Journals = nil
		for i, name := range o.Observers {
			c := *cfg
			c.Observer.Name = name
			if i > 0 {
				c.Sinks.Journal.Dir = res.JournalDir + "-" + name
			}
			cfgs = append(cfgs, &c)
			res.Journals = append(res.Journals, c.Sinks.Journal.Dir)
		}
	}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		daemons []*daemon.Daemon
		readies []*readiness
	)
	runErr := make(chan error, len(cfgs))
	for _, c := range cfgs {
		ready := newReadiness(TargetName, parts)
		// The lab polls the Blue/Green metadata every interval, so each
		// phase can be held to the same tolerance as every other boundary.
		d, err := daemon.New(c, daemon.Options{Logger: o.DaemonLogger, Version: o.Version, BlueGreenBaseline: o.Interval,
			Observers: []daemon.EventObserver{ready}})
		if err != nil {
			stop()
			for range daemons {
				<-runErr
			}
			return nil, fmt.Errorf("lab: start dbprobe: %w", err)
		}
		daemons, readies = append(daemons, d), append(readies, ready)
		go func() { runErr <- d.Run(dctx) }()
	}
	d := daemons[0]
	// stopDaemon ends probing and waits for every dbprobe to write its
	// report.
	stopped := 0
	stopDaemon := func() error {
		stop()
		var errs []error
		for ; stopped < len(daemons); stopped++ {
			errs = append(errs, <-runErr)
		}
		return errors.Join(errs...)
	}

	wait := time.NewTimer(readyTimeout)
	defer wait.Stop()
	for _, ready := range readies {
		select {
		case <-ready.done:
		case err := <-runErr:
			stopped++
			return nil, errors.Join(fmt.Errorf("lab: dbprobe stopped before its first good probes: %w", err), stopDaemon())
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), stopDaemon())
		case <-wait.C:
			return nil, errors.Join(fmt.Errorf("lab: dbprobe had no good probe of every stream and no Blue/Green status within %v: %s", readyTimeout, ready.missing()), stopDaemon())
		}
	}

	truth, swErr := o.run(ctx, l)
	if swErr == nil {
		// The tail lets the last boundaries be seen and shows how long the
		// pooled stream stays on old blue.
		if !sleepUntil(ctx, time.Now().Add(o.Tail)) {
			swErr = ctx.Err()
		}
	}
	stoppedAt := time.Now()
	dErr := stopDaemon()
	if truth != nil {
		st := Step{Name: StepProbingStopped, Start: stoppedAt, At: stoppedAt}
		truth.Steps = append(truth.Steps, st)
		o.Progress(st)
		res.Truth = truth
		if err := writeJSON(res.TruthFile, truth); err != nil {
			dErr = errors.Join(dErr, err)
		}
	}
	if err := errors.Join(swErr, dErr); err != nil {
		return res, err
	}
	res.Report = d.Report()
	if len(daemons) > 1 {
		rep, err := mergedReport(ctx, d.RunID(), res.Journals)
		if err != nil {
			return res, err
		}
		res.Report = rep
	}
	res.Comparison = Compare(truth, res.Report, CompareOptions{Interval: o.Interval, Slack: o.Slack, PhasePoll: o.Interval, ProbeTimeout: ProbeTimeout(o.Interval)})
	if _, err := os.Stat(res.ReportHTML); err != nil {
		return res, fmt.Errorf("lab: dbprobe wrote no HTML report: %w", err)
	}
	res.Elapsed = time.Since(began)
	return res, nil
}

// mergedReport is the report of run in journals, merged as `dbprobe
// report --journal A --journal B` merges them.
func mergedReport(ctx context.Context, run string, journals []string) (*report.Report, error) {
	a := analysis.New(analysis.Options{RunID: run})
	for _, dir := range journals {
		if _, err := a.ScanJournal(ctx, dir); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	rep, _, err := a.Report()
	if err != nil {
		return nil, fmt.Errorf("lab: merge the observers' journals: %w", err)
	}
	return rep, nil
}

// Validate reports a scenario the lab does not know, or knobs of the
// scenario that cannot be run.
func (o *RunOptions) Validate() error {
	switch o.Scenario {
	case "":
		return o.Switchover.Validate()
	case ScenarioBlueGreen:
		return o.Switchover.Validate()
	case ScenarioFailover:
		return o.Failover.Validate()
	case ScenarioReboot:
		return o.Reboot.Validate()
	case ScenarioProxy:
		return o.Proxy.Validate()
	}
	return CheckScenario(o.Scenario)
}

// Knobs returns a pointer to the options of o's scenario: a
// *SwitchoverOptions, *FailoverOptions, *RebootOptions or *ProxyOptions.
func (o *RunOptions) Knobs() any {
	switch o.Scenario {
	case ScenarioFailover:
		return &o.Failover
	case ScenarioReboot:
		return &o.Reboot
	case ScenarioProxy:
		return &o.Proxy
	}
	return &o.Switchover
}

// run runs the scenario on l.
func (o *RunOptions) run(ctx context.Context, l *Lab) (*Truth, error) {
	switch o.Scenario {
	case ScenarioFailover:
		return l.Failover(ctx, o.Failover, o.Progress)
	case ScenarioReboot:
		return l.Reboot(ctx, o.Reboot, o.Progress)
	case ScenarioProxy:
		return l.ProxySwitch(ctx, o.Proxy, o.Progress)
	}
	return l.Switchover(ctx, o.Switchover, o.Progress)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// readiness watches dbprobe's events until every stream of the target has
// had a probe that read and wrote, and (in a Blue/Green run) the poller has
// read the deployment's status: only then does a scenario measure anything.
type readiness struct {
	target string
	parts  []string // modes, and readyBlueGreen
	done   chan struct{}

	mu   sync.Mutex
	ok   map[string]bool
	once sync.Once
}

// readyBlueGreen is the readiness part of the Blue/Green poller.
const readyBlueGreen = "bluegreen"

func newReadiness(target string, parts []string) *readiness {
	return &readiness{target: target, parts: parts, done: make(chan struct{}), ok: map[string]bool{}}
}

// Observe implements daemon.EventObserver.
func (r *readiness) Observe(e *event.Event) {
	p := &e.DBProbe
	if p.Target != r.target {
		return
	}
	part := ""
	switch {
	case e.Event.Action == event.ActionProbe && p.Read != nil && p.Read.OK && p.Write != nil && p.Write.OK:
		part = p.Mode
	case p.BlueGreen != nil && p.BlueGreen.Phase == event.BlueGreenCreated:
		part = readyBlueGreen
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok[part] = true
	for _, want := range r.parts {
		if !r.ok[want] {
			return
		}
	}
	r.once.Do(func() { close(r.done) })
}

func (r *readiness) missing() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, want := range r.parts {
		if !r.ok[want] {
			out = append(out, want)
		}
	}
	return fmt.Sprint("missing: ", out)
}
