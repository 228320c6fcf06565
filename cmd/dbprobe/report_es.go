package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dbprobe/dbprobe/analysis"
	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/elasticsearch"
)

// esReport is `dbprobe report --es`: the same analysis, fed from
// Elasticsearch instead of a journal, over every observer of the run.
type esReport struct {
	runID, addr, index, format, output string
}

// reportFromES reads run a.runID from Elasticsearch, analyses it like a
// journal and renders it, followed by the consensus of the observers.
func reportFromES(ctx context.Context, e *env, a *analysis.Analysis, q esReport) error {
	if q.runID == "" {
		return usageError{errors.New("--es needs --run-id: Elasticsearch holds every run")}
	}
	cfg, err := config.ElasticsearchFromEnv("--es", q.addr, e.getenv)
	if err != nil {
		return usageError{err}
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return usageError{err}
	}
	err = c.Search(ctx, q.index, q.runID, func(ev *event.Event) error {
		a.Observe(ev)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read run %s from Elasticsearch: %w", q.runID, err)
	}
	rep, err := pickedReport(a, e)
	if err != nil {
		return err
	}
	cons := report.Consensus(rep)
	// The consensus follows a text or Markdown report on standard output;
	// anywhere else it would break the file or the JSON, so it goes to the
	// terminal as text.
	var consOut io.Writer = e.stdout
	consFormat := q.format
	if q.output != "" {
		if err := report.WriteFile(q.output, q.format, rep); err != nil {
			return err
		}
		consFormat = "text"
	} else {
		if err := report.Render(e.stdout, q.format, rep); err != nil {
			return err
		}
		if q.format != "text" && q.format != "markdown" {
			consOut, consFormat = e.stderr, "text"
		}
	}
	return report.WriteConsensus(consOut, consFormat, cons)
}
