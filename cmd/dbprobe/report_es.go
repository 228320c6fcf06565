package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/dbprobe/dbprobe/analysis"
	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/elasticsearch"
)

// esReport is `dbprobe report --es`: the same analysis, fed from
// Elasticsearch instead of a journal, over every observer of the run.
type esReport struct {
	runID, addr, index, format, output string
}

// reportFromES reads run a.runID from Elasticsearch, analyses it like a
// journal and renders it, with the consensus of its observers.
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
	return writeReport(e, rep, q.format, q.output)
}
