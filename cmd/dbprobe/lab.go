package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/lab"
)

// errLabMismatch makes `dbprobe lab` exit 1 when dbprobe's report strays
// from the ground truth beyond the tolerance.
var errLabMismatch = errors.New("dbprobe's report differs from the ground truth beyond the tolerance (see the table above)")

func labCmd(ctx context.Context, args []string, e *env) error {
	if len(args) > 0 {
		switch args[0] {
		case "up":
			return labUpCmd(ctx, args[1:], e)
		case "switchover":
			return labByHandCmd(ctx, args[1:], e, lab.ScenarioBlueGreen)
		case lab.ScenarioFailover, lab.ScenarioReboot, lab.ScenarioProxy:
			return labByHandCmd(ctx, args[1:], e, args[0])
		case "down":
			return labDownCmd(ctx, args[1:], e)
		}
	}
	return labRunCmd(ctx, args, e)
}

// defaultKnobs is every scenario's knobs at their defaults.
func defaultKnobs() *lab.RunOptions {
	return &lab.RunOptions{Switchover: lab.DefaultSwitchover(), Failover: lab.DefaultFailover(),
		Reboot: lab.DefaultReboot(), Proxy: lab.DefaultProxy()}
}

// knobFlags registers the knobs of scenario on fs, defaulting to and
// landing in o.
func knobFlags(fs *flag.FlagSet, scenario string, o *lab.RunOptions) {
	switch scenario {
	case lab.ScenarioBlueGreen:
		sw := &o.Switchover
		fs.DurationVar(&sw.Prepare, "prepare", sw.Prepare, "time in PREPARATION (SWITCHOVER_INITIATED) before SWITCHOVER_IN_PROGRESS")
		fs.DurationVar(&sw.Announce, "announce", sw.Announce, "time SWITCHOVER_IN_PROGRESS is readable before writes stop")
		fs.DurationVar(&sw.ReadOnlyLead, "read-only-lead", sw.ReadOnlyLead, "time blue is read-only before connections drop and logins are refused")
		fs.DurationVar(&sw.LockWait, "lock-wait", sw.LockWait, "hold a global read lock on blue this long before it turns read-only: writes wait instead of failing")
		fs.DurationVar(&sw.Freeze, "freeze", sw.Freeze, "freeze blue (SIGSTOP) this long at the start of the hold: clients hang instead of being refused (at most --hold)")
		fs.DurationVar(&sw.Hold, "hold", sw.Hold, "active-phase hold after connections drop, before green's catch-up")
		fs.DurationVar(&sw.DNSDelay, "dns-delay", sw.DNSDelay, "from SWITCHOVER_IN_POST_PROCESSING to the endpoint name answering green")
		fs.DurationVar(&sw.GreenDNSRemoval, "green-dns-removal", sw.GreenDNSRemoval, "from the endpoint move to the green name's removal and SWITCHOVER_COMPLETED")
		fs.DurationVar(&sw.Lag, "lag", sw.Lag, "replica lag to inject: green's SQL thread stops after the guardrails and restarts this long into the catch-up")
		fs.BoolVar(&sw.Rollback, "rollback", sw.Rollback, "keep green behind until the switchover times out, so it is rolled back")
		fs.DurationVar(&sw.Timeout, "switchover-timeout", sw.Timeout, "switchover timeout, from SWITCHOVER_INITIATED to the end of the catch-up")
		fs.DurationVar(&sw.MaxLag, "max-lag", sw.MaxLag, "guardrail: refuse the switchover when green lags more")
	case lab.ScenarioFailover:
		fs.DurationVar(&o.Failover.PromoteDelay, "promote-delay", o.Failover.PromoteDelay, "failover: from the writer's death to the replica's promotion")
		fs.DurationVar(&o.Failover.DNSDelay, "failover-dns-delay", o.Failover.DNSDelay, "failover: from the promotion to the endpoint name answering the new writer")
		fs.BoolVar(&o.Failover.Hang, "hang", o.Failover.Hang, "failover: freeze the writer (SIGSTOP) instead of killing it, as AWS fences a failed writer: clients time out instead of being refused")
	case lab.ScenarioReboot:
		fs.DurationVar(&o.Reboot.Down, "down", o.Reboot.Down, "reboot: how long the writer stays stopped before it starts again (its start adds about a second)")
	case lab.ScenarioProxy:
		fs.DurationVar(&o.Proxy.Pause, "pause", o.Proxy.Pause, "proxy: how long the proxy holds traffic while the backend changes from blue to green")
		fs.DurationVar(&o.Proxy.MaxPause, "max-pause", o.Proxy.MaxPause, "proxy: how long the proxy holds one connection or command at most before it drops it (RDS Proxy's ConnectionBorrowTimeout)")
	}
}

// scenarioFlags registers --scenario and the knobs of every scenario on fs
// and returns where they land, and which scenario each knob belongs to.
func scenarioFlags(fs *flag.FlagSet) (*lab.RunOptions, map[string]string) {
	o := defaultKnobs()
	fs.StringVar(&o.Scenario, "scenario", lab.ScenarioBlueGreen, "what to run: bluegreen (an RDS Blue/Green switchover), failover (the writer dies, the replica is promoted, DNS moves), reboot (the writer restarts in place) or proxy (a connection-holding proxy moves its clients to green)")
	owner := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { owner[f.Name] = "" }) // not a knob
	for _, sc := range lab.Scenarios {
		knobFlags(fs, sc, o)
		fs.VisitAll(func(f *flag.Flag) {
			if _, ok := owner[f.Name]; !ok {
				owner[f.Name] = sc
			}
		})
	}
	return o, owner
}

// checkScenarioFlags refuses a knob given for another scenario than the one
// run: it would be silently ignored.
func checkScenarioFlags(fs *flag.FlagSet, scenario string, owner map[string]string) error {
	if err := lab.CheckScenario(scenario); err != nil {
		return usageError{fmt.Errorf("--scenario: %w", err)}
	}
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		if o := owner[f.Name]; o != "" && o != scenario {
			errs = append(errs, fmt.Errorf("--%s applies to --scenario %s, not %s", f.Name, o, scenario))
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// labFlags are the flags of both dbprobe lab and dbprobe lab up.
type labFlags struct {
	interval time.Duration
	single   bool
	verbose  bool
}

func (f *labFlags) register(fs *flag.FlagSet, intervalUsage, verboseUsage string) {
	fs.DurationVar(&f.interval, "interval", lab.DefaultInterval, intervalUsage)
	fs.BoolVar(&f.single, "single-port", false, "run blue and green on 127.0.0.1 with distinct ports behind a forwarder, as on machines without loopback aliases")
	fs.BoolVar(&f.verbose, "v", false, verboseUsage)
}

func (f *labFlags) check() error {
	if f.interval < config.MinInterval {
		return usageError{fmt.Errorf("--interval must be at least %v (got %v)", config.MinInterval, f.interval)}
	}
	return nil
}

func labLogger(w io.Writer, verbose bool) *slog.Logger {
	lvl := slog.LevelWarn
	if verbose {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// stepPrinter prints each step with its offset from the first.
func stepPrinter(w io.Writer) func(lab.Step) {
	var t0 time.Time
	return func(s lab.Step) {
		if t0.IsZero() {
			t0 = s.At
		}
		line := fmt.Sprintf("  %s  %+8.3fs  %s", s.At.UTC().Format("15:04:05.000"), s.At.Sub(t0).Seconds(), s.Name)
		if s.Detail != "" {
			line += "  (" + s.Detail + ")"
		}
		fmt.Fprintln(w, line)
	}
}

func labRunCmd(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("dbprobe lab", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: dbprobe lab [flags]              run a lab scenario end to end (default: a Blue/Green switchover); compare dbprobe's report with the ground truth
       dbprobe lab up [flags]           start a lab and keep it up for your own dbprobe, Kibana and Grafana
       dbprobe lab switchover [flags]   switch the running lab over (or: failover, reboot, proxy)
       dbprobe lab down [--dir DIR]     stop the running lab
See docs/lab.md. Flags of dbprobe lab:`)
		fs.PrintDefaults()
	}
	var common labFlags
	common.register(fs, "dbprobe's probe interval", "log what the lab and dbprobe do (findings as they happen)")
	run, owner := scenarioFlags(fs)
	tail := fs.Duration("tail", 0, "how long dbprobe keeps probing after the last step (default max(1s, 10 intervals))")
	slack := fs.Duration("slack", lab.DefaultSlack, "added to one interval to make each boundary's tolerance")
	dir := fs.String("dir", "", "the lab's directory (default: a new temp dir)")
	keep := fs.Bool("keep", false, "keep the servers' data directories and logs (the report, journal and ground truth are always kept)")
	observers := fs.String("observers", "", "comma-separated observer `names`: run one dbprobe per name, each with its own journal and one shared run id, and report their journals merged")
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	if *observers != "" {
		run.Observers = strings.Split(*observers, ",")
		for _, n := range run.Observers {
			if n == "" {
				return usageError{fmt.Errorf("--observers: an empty name in %q", *observers)}
			}
		}
	}
	if err := common.check(); err != nil {
		return err
	}
	if err := checkScenarioFlags(fs, run.Scenario, owner); err != nil {
		return err
	}
	if err := run.Validate(); err != nil {
		return usageError{err}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "dbprobe-lab-")
		if err != nil {
			return err
		}
		*dir = d
	}
	log := labLogger(e.stderr, common.verbose)
	// ctx is cancelled by the first SIGINT/SIGTERM (see dispatch).

	parts := "blue, green, DNS and dbprobe"
	if run.Scenario == lab.ScenarioProxy {
		parts = "blue, green, the proxy, DNS and dbprobe"
	}
	fmt.Fprintf(e.stdout, "dbprobe lab (%s) in %s: starting %s (interval %v)...\n", run.Scenario, *dir, parts, common.interval)
	fmt.Fprintf(e.stdout, "%s, as it happens (ground truth):\n", run.Scenario)
	run.Dir, run.Interval, run.Tail, run.Slack, run.SinglePort = *dir, common.interval, *tail, *slack, common.single
	run.Logger, run.DaemonLogger, run.Version, run.Progress = log, log, buildVersion(), stepPrinter(e.stdout)
	res, err := lab.Run(ctx, *run)
	if !*keep {
		if rerr := lab.RemoveServers(*dir); rerr != nil {
			log.Warn("could not remove the lab's servers", "err", rerr)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\ndbprobe's report beside the ground truth (%s):\n", res.Truth.Outcome)
	if err := res.Comparison.WriteText(e.stdout); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nHTML report:  %s\nJSON report:  %s\nground truth: %s\njournal:      %s\nlab run took %s\n",
		res.ReportHTML, filepath.Join(res.JournalDir, "report.json"), res.TruthFile, strings.Join(res.Journals, " "), res.Elapsed.Round(100*time.Millisecond))
	if len(res.Journals) > 1 {
		fmt.Fprintf(e.stdout, "The comparison is of the merged report: dbprobe report --journal %s\n", strings.Join(res.Journals, " --journal "))
	}
	if !res.Comparison.OK() {
		return errLabMismatch
	}
	return nil
}

// defaultLabDir is where `lab up` puts its lab unless told otherwise, and
// where `lab switchover` and `lab down` look for it: one per user.
func defaultLabDir() string {
	return filepath.Join(os.TempDir(), "dbprobe-lab-"+strconv.Itoa(os.Getuid()))
}

func labUpCmd(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("dbprobe lab up", flag.ContinueOnError)
	dir := fs.String("dir", defaultLabDir(), "the lab's directory; lab switchover and lab down find the lab through it")
	var common labFlags
	common.register(fs, "probe interval of the dbprobe config written for the lab", "log what the lab does")
	listen := fs.String("http", config.DefaultListen, "dbprobe's HTTP address in the config written for the lab (metrics for Prometheus); empty turns it off")
	withProxy := fs.Bool("proxy", false, "put a connection-holding proxy in front, like RDS Proxy, for dbprobe lab proxy")
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	if err := common.check(); err != nil {
		return err
	}
	log := labLogger(e.stderr, common.verbose)
	l, err := lab.Start(ctx, lab.Options{Dir: *dir, Logger: log, SinglePort: common.single, Proxy: *withProxy})
	if err != nil {
		return err
	}
	defer l.Close()
	cfgPath := filepath.Join(l.Dir(), "dbprobe.yaml")
	if err := l.WriteConfig(cfgPath, lab.ConfigOptions{Interval: common.interval, HTTPListen: *listen}); err != nil {
		return err
	}
	info := l.Info(cfgPath)
	ctrl, err := l.Serve(info)
	if err != nil {
		return err
	}
	// The servers stop before the info file goes: lab down waits for the
	// file to disappear.
	defer func() {
		l.Close()
		ctrl.Close()
	}()
	dnsHost, dnsPort, _ := net.SplitHostPort(info.DNS)
	route, next := "blue", fmt.Sprintf(`Switch over:   dbprobe lab switchover --dir %s [--hold 2s --dns-delay 8s ...]
Or fail over:  dbprobe lab failover --dir %s [--promote-delay 1s --failover-dns-delay 2s --hang]
Or reboot:     dbprobe lab reboot --dir %s [--down 1s]
`, l.Dir(), l.Dir(), l.Dir())
	if info.Proxy {
		route, next = "the proxy -> blue", fmt.Sprintf("Switch:        dbprobe lab proxy --dir %s [--pause 1s --max-pause 10s]\nOr reboot:     dbprobe lab reboot --dir %s [--down 1s]\n", l.Dir(), l.Dir())
	}
	fmt.Fprintf(e.stdout, `dbprobe lab is up in %s (stop it with Ctrl-C or: dbprobe lab down --dir %s)
  blue       %s  (server_id 101, writable, binlog ROW + GTID)
  green      %s  (server_id 202, read_only, replicating from blue)
  endpoint   %s  -> %s
  DNS        %s  (zone %s, TTL %d s; try: dig @%s -p %s %s)
  DSN        %s
  config     %s
  control    %s
Probe it:      dbprobe run --config %s
%s`, l.Dir(), l.Dir(), info.Blue, info.Green, info.Endpoint, route, info.DNS, lab.Zone, lab.TTL,
		dnsHost, dnsPort, lab.EndpointName, l.DSN(), cfgPath, info.Control, cfgPath, next)
	if l.SinglePort() {
		fmt.Fprintln(e.stdout, "Note: no loopback aliases here; the endpoint name answers 127.0.0.1 and a forwarder moves new connections at the DNS step.")
	}
	select {
	case <-ctx.Done():
	case s := <-e.signals:
		fmt.Fprintf(e.stdout, "%s: stopping the lab\n", s)
	case <-ctrl.Down():
		fmt.Fprintln(e.stdout, "asked to stop: stopping the lab")
	}
	return nil
}

// labByHandCmd runs scenario on the lab brought up with `dbprobe lab up`
// (dbprobe lab switchover, failover, reboot, proxy).
func labByHandCmd(ctx context.Context, args []string, e *env, scenario string) error {
	verb := scenario
	if scenario == lab.ScenarioBlueGreen {
		verb = "switchover"
	}
	fs := flag.NewFlagSet("dbprobe lab "+verb, flag.ContinueOnError)
	dir := fs.String("dir", defaultLabDir(), "the directory of the lab brought up with dbprobe lab up")
	o := defaultKnobs()
	o.Scenario = scenario
	knobFlags(fs, scenario, o)
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	c, err := lab.Dial(ctx, *dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s, as it happens (ground truth):\n", verb)
	truth, err := c.Run(ctx, scenario, o.Knobs(), stepPrinter(e.stdout))
	if truth != nil {
		fmt.Fprintf(e.stdout, "outcome: %s; the ground truth is also in %s/truth-*.json\n", truth.Outcome, *dir)
	}
	return err
}

func labDownCmd(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("dbprobe lab down", flag.ContinueOnError)
	dir := fs.String("dir", defaultLabDir(), "the directory of the lab brought up with dbprobe lab up")
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	c, err := lab.Dial(ctx, *dir)
	if err != nil {
		return err
	}
	if err := c.Down(ctx); err != nil {
		return err
	}
	// The lab removes its info file once its servers are stopped.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(*dir, lab.InfoFile)); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(e.stdout, "lab in %s stopped\n", *dir)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the lab in %s (pid %d) did not stop within a minute", *dir, c.Info.PID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
