package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// stage is one part of a running dbprobe: how it starts and how it stops.
// start must not block; stop returns once the stage has stopped. Either may
// be nil.
type stage struct {
	name  string
	start func()
	stop  func() error
}

// stages lists the parts of a run in the order they start. They stop in
// the reverse order, and that order is what makes a stop lose nothing:
//
//   - the probes stop first, so nothing emits once the events end;
//   - the analysis then takes every event left, and the detector's final
//     flush turns what is still open into findings;
//   - the webhooks stop after that flush, so they send its findings;
//   - the journal closes once every event and finding is in it;
//   - the Elasticsearch shipper stops after that, so its last pass ships
//     the journal's end;
//   - the report is written from the final analysis;
//   - retention and the HTTP server stop last: the server answers until
//     the report is final.
//
// A stage that is not configured starts and stops nothing.
func (d *Daemon) stages() []stage {
	var hooks []func(context.Context)
	for _, n := range d.hooks {
		hooks = append(hooks, n.Run)
	}
	var ship []func(context.Context)
	if d.shipper != nil {
		ship = append(ship, d.shipper.Run)
	}
	var serve []func(context.Context)
	if d.web != nil {
		serve = append(serve, func(ctx context.Context) {
			if err := d.web.Serve(ctx); err != nil {
				d.log.Error("http server stopped", "err", err)
			}
		})
	}
	probes := []func(context.Context){d.probe}
	for _, p := range d.awsPollers {
		probes = append(probes, func(ctx context.Context) { p.Run(ctx, d.emit) })
	}
	consumed := make(chan struct{})
	return []stage{
		goStage("http", serve...),
		goStage("retention", d.trimJournal),
		{name: "report", stop: d.writeReport},

		goStage("elasticsearch", ship...),
		{name: "journal", stop: func() error {
			err := d.journal.Close()
			if ue := (*journal.UnwrittenError)(nil); errors.As(err, &ue) {
				d.unwritten.Store(uint64(ue.Events))
			}
			if err != nil {
				return fmt.Errorf("close journal: %w", err)
			}
			return nil
		}},
		goStage("webhooks", hooks...),
		{name: "analysis",
			start: func() {
				go func() {
					defer close(consumed)
					d.consume()
				}()
			},
			stop: func() error {
				close(d.events)
				<-consumed
				d.recordBatch(d.detect.Flush())
				d.findings.flush()
				return nil
			}},
		goStage("probes", probes...),
	}
}

// goStage runs each of fns on its own goroutine from the stage's start to
// its stop, which cancels their context and waits for them.
func goStage(name string, fns ...func(context.Context)) stage {
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	return stage{
		name: name,
		start: func() {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			for _, fn := range fns {
				wg.Go(func() { fn(ctx) })
			}
		},
		stop: func() error {
			cancel()
			wg.Wait()
			return nil
		},
	}
}

// runStages starts stages in order, waits for ctx to end, then stops them
// in reverse order, every one of them whatever the others return.
func runStages(ctx context.Context, stages []stage) error {
	for _, s := range stages {
		if s.start != nil {
			s.start()
		}
	}
	<-ctx.Done()
	var err error
	for i := len(stages) - 1; i >= 0; i-- {
		if s := stages[i]; s.stop != nil {
			err = errors.Join(err, s.stop())
		}
	}
	return err
}

func (d *Daemon) emit(e *event.Event) { d.events <- envelope{e: e} }

// writeReport writes the final report beside the journal and the summary
// where the caller asked for it.
func (d *Daemon) writeReport() error {
	rep := d.Report()
	var err error
	if werr := report.WriteFiles(d.JournalDir(), rep); werr != nil {
		d.log.Error("writing the report failed", "err", werr)
		err = werr
	} else {
		d.log.Info("report written", "json", filepath.Join(d.JournalDir(), "report.json"), "html", filepath.Join(d.JournalDir(), "report.html"))
	}
	if d.opts.Summary != nil {
		err = errors.Join(err, report.Text(d.opts.Summary, rep))
	}
	return err
}
