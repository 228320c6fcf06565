package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/probe"
)

// targetRun is the probing of one target: its streams and its Blue/Green
// poller, started and stopped together.
type targetRun struct {
	name string
	// print is what the target's probing depends on; a reload restarts the
	// target when it differs.
	print   fingerprint
	streams []*probe.Stream
	poller  *probe.BlueGreenPoller
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// reloadRequest asks the probing goroutine to apply a configuration.
type reloadRequest struct {
	cfg  *config.Config
	done chan error
}

// errStopping answers a reload that arrives while dbprobe stops.
var errStopping = errors.New("dbprobe is stopping")

// newRuns builds the probing of every target of cfg; nothing runs yet.
func (d *Daemon) newRuns(cfg *config.Config, env *probe.Env) []*targetRun {
	targets := Targets(cfg)
	// One call for all targets: env is completed (its redactor built) once,
	// and NewStreams gives every target its share of env's budget.
	streams := probe.NewStreams(targets, env)
	var out []*targetRun
	for i, t := range targets {
		n := len(t.Modes)
		r := &targetRun{name: t.Name, print: fingerprintOf(&cfg.Targets[i]), streams: streams[:n:n]}
		streams = streams[n:]
		if t.BlueGreen {
			r.poller = probe.NewBlueGreenPoller(t, env)
			if d.opts.BlueGreenBaseline > 0 {
				r.poller.Baseline = d.opts.BlueGreenBaseline
			}
		}
		out = append(out, r)
	}
	return out
}

// fingerprint is a digest of everything a target's probing depends on,
// effective defaults included (a group's modes, interval and labels are in
// the target's own fields). A digest, not the text: a fleet keeps one
// per target, and the text holds the password. JSON, not YAML: at 10,000
// targets YAML's encoder allocated about 390 MB at every start and reload
// (39 KB a target, against 374 B).
type fingerprint struct {
	sum [sha256.Size]byte
	ok  bool // false when the target could not be encoded: never the same
}

func fingerprintOf(t *config.Target) fingerprint {
	j, err := json.Marshal(t)
	if err != nil {
		return fingerprint{}
	}
	green := ""
	if t.Green != nil {
		green = t.Green.MySQL().FormatDSN()
	}
	h := sha256.New()
	h.Write(j)
	fmt.Fprint(h, "\x00", t.MySQL().FormatDSN(), "\x00", green, "\x00", t.EffectiveInterval(), t.EffectiveTimeout(), t.EffectiveDNS())
	f := fingerprint{ok: true}
	h.Sum(f.sum[:0])
	return f
}

// same says whether probing with a and b is the same.
func (a fingerprint) same(b fingerprint) bool { return a.ok && b.ok && a.sum == b.sum }

func (d *Daemon) start(r *targetRun) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, s := range r.streams {
		r.wg.Go(func() { s.Run(ctx, d.emit) })
	}
	if r.poller != nil {
		r.wg.Go(func() { r.poller.Run(ctx, d.emit) })
	}
}

// stop stops a target's probing and waits for its in-flight probes; its
// events are then all in the event channel.
func (r *targetRun) stop() {
	r.cancel()
	r.wg.Wait()
}

// probe runs every target until ctx is done, applying the reloads it is
// sent meanwhile; it returns once every probe has ended.
func (d *Daemon) probe(ctx context.Context) {
	defer close(d.probesDone)
	for _, r := range d.runs {
		d.start(r)
	}
	for {
		select {
		case <-ctx.Done():
			for _, r := range d.runs {
				r.cancel()
			}
			for _, r := range d.runs {
				r.wg.Wait()
			}
			return
		case req := <-d.reloads:
			req.done <- d.apply(req.cfg)
		}
	}
}

// Reload reads the configuration again (Options.Load) and applies it:
// targets whose settings changed restart, new ones start, removed ones stop
// with their open windows closed "stopped", the others keep their
// schedule. A configuration that does not load is refused and the running
// one kept. The journal and the run id are unaffected. Reload is what
// SIGHUP and POST /-/reload do.
func (d *Daemon) Reload(ctx context.Context) error {
	err := d.reload(ctx)
	d.metrics.Reloaded(err == nil, d.opts.Now())
	if err != nil {
		d.log.Error("config reload refused; the running configuration stays", "err", err)
		return err
	}
	return nil
}

func (d *Daemon) reload(ctx context.Context) error {
	if d.opts.Load == nil {
		return errors.New("no configuration file to reload")
	}
	cfg, err := d.opts.Load()
	if err != nil {
		return err
	}
	req := reloadRequest{cfg: cfg, done: make(chan error, 1)}
	select {
	case d.reloads <- req:
	case <-d.probesDone:
		return errStopping
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// apply switches the running targets to cfg's; it runs on the probing
// goroutine, the only one that starts and stops targets.
func (d *Daemon) apply(cfg *config.Config) error {
	d.warnUnreloadable(cfg)
	env := d.env(cfg)
	old := map[string]*targetRun{}
	for _, r := range d.runs {
		old[r.name] = r
	}
	var next []*targetRun
	var started, restarted, kept []string
	for _, r := range d.newRuns(cfg, env) {
		o := old[r.name]
		delete(old, r.name)
		switch {
		case o != nil && o.print.same(r.print):
			next = append(next, o)
			kept = append(kept, r.name)
			continue
		case o != nil:
			d.stopRun(o, r)
			restarted = append(restarted, r.name)
		default:
			started = append(started, r.name)
		}
		for _, s := range r.streams {
			d.metrics.AddStream(s.Key(), s.Interval())
			d.board.AddStream(s.Key())
		}
		d.exportLabels(cfg, r.name)
		d.start(r)
		next = append(next, r)
	}
	var stopped []string
	for _, r := range d.runs {
		if old[r.name] != nil {
			d.metrics.RemoveTargetLabels(r.name)
			d.stopRun(r, nil)
			stopped = append(stopped, r.name)
		}
	}
	d.mu.Lock()
	d.runs = next
	d.mu.Unlock()
	d.log.Info("config reloaded", "started", started, "restarted", restarted, "stopped", stopped, "unchanged", kept)
	return nil
}

// stopRun stops a target and, once its last events are in the channel,
// has the analysis close what it left open. Streams that next (the
// target's restart; nil when it was removed) does not have leave the live
// board and the metrics, and so does the poller without a successor.
func (d *Daemon) stopRun(r *targetRun, next *targetRun) {
	r.stop()
	kept := map[event.StreamKey]bool{}
	if next != nil {
		for _, s := range next.streams {
			kept[s.Key()] = true
		}
	}
	keys := make([]event.StreamKey, len(r.streams))
	for i, s := range r.streams {
		keys[i] = s.Key()
	}
	pollerGone := r.poller != nil && (next == nil || next.poller == nil)
	d.events <- envelope{do: func() {
		for _, k := range keys {
			// Findings only: recordBatch journals them without analysing.
			d.recordBatch(d.detect.StopStream(k))
			if !kept[k] {
				d.board.RemoveStream(k)
				d.metrics.RemoveStream(k)
			}
		}
		if pollerGone && len(keys) > 0 {
			// The Blue/Green poller's series carry no mode.
			d.metrics.RemoveStream(event.StreamKey{Observer: keys[0].Observer, Target: r.name})
		}
	}}
}

// exportLabels sets the metric labels (metric_labels) of the target name
// of cfg; the names allowed are those dbprobe started with.
func (d *Daemon) exportLabels(cfg *config.Config, name string) {
	if len(d.cfg.MetricLabels) == 0 {
		return
	}
	for i := range cfg.Targets {
		if t := &cfg.Targets[i]; t.Name == name {
			d.metrics.SetTargetLabels(name, t.EffectiveLabels())
		}
	}
}

// warnUnreloadable logs the settings a reload does not apply: everything
// but the targets is set up once, at start.
func (d *Daemon) warnUnreloadable(cfg *config.Config) {
	a, b := *d.cfg, *cfg
	a.Targets, b.Targets = nil, nil
	a.Interval, b.Interval = config.Duration{}, config.Duration{}
	a.Timeout, b.Timeout = config.Duration{}, config.Duration{}
	a.DNS, b.DNS = config.DNS{}, config.DNS{}
	// Target files and groups are read into the targets, which a reload
	// applies.
	a.TargetFiles, b.TargetFiles = nil, nil
	a.Groups, b.Groups = nil, nil
	var changed []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		ya, _ := yaml.Marshal(va.Field(i).Interface())
		yb, _ := yaml.Marshal(vb.Field(i).Interface())
		if string(ya) != string(yb) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			changed = append(changed, name)
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		d.log.Warn("config reload applies to targets only: these changes take effect at the next start", "sections", changed)
	}
}

// env is what the streams of cfg share; the observer stays the one the run
// started with, so every event of the run names the same observer.
// Secrets accumulate: a probe still in flight may carry an old password.
// Each is kept once: a fleet shares passwords, a reload brings them again,
// and every failed probe's message is scanned for every one of them.
func (d *Daemon) env(cfg *config.Config) *probe.Env {
	d.secrets = slices.Compact(slices.Sorted(slices.Values(append(d.secrets, cfg.Secrets()...))))
	return &probe.Env{
		RunID:       d.runID,
		Observer:    Observer(d.cfg, d.opts.Version),
		Labels:      d.cfg.Observer.Labels,
		Secrets:     slices.Clone(d.secrets),
		Logger:      d.log,
		Clock:       d.opts.Clock,
		MaxInFlight: probeBudget(cfg),
	}
}
