package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"

	"github.com/dbprobe/dbprobe/sink/elasticsearch"
)

// reshipShown bounds the refusals listed one by one; the rest are counted.
const reshipShown = 10

// reshipCmd is `dbprobe reship`: the documents Elasticsearch refused for
// good, sent again once their cause is fixed.
func reshipCmd(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("dbprobe reship", flag.ContinueOnError)
	cfgPath := fs.String("config", "dbprobe.yaml", "configuration file (sinks.elasticsearch: where to send, and the dead-letter file)")
	file := fs.String("file", "", "dead-letter file to send again (default: sinks.elasticsearch.dead_letter, or the one in the journal directory)")
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	es := cfg.Sinks.Elasticsearch
	if es == nil {
		return usageError{fmt.Errorf("%s has no sinks.elasticsearch: nothing to reship to", *cfgPath)}
	}
	path := *file
	if path == "" {
		path = elasticsearch.DeadLetterPath(es, cfg.Sinks.Journal.Dir)
	}
	c, err := elasticsearch.NewClient(es)
	if err != nil {
		return usageError{err}
	}
	res, err := c.Reship(ctx, path)
	if errors.Is(err, os.ErrNotExist) && *file == "" {
		fmt.Fprintf(e.stdout, "%s does not exist: Elasticsearch has refused no document of this dbprobe for good.\n", path)
		return nil
	}
	if res != nil {
		fmt.Fprintf(e.stdout, "%s:\n", path)
		fmt.Fprintf(e.stdout, "  stored now:            %d\n", res.Stored)
		fmt.Fprintf(e.stdout, "  already stored:        %d\n", res.AlreadyStored)
		fmt.Fprintf(e.stdout, "  refused again:         %d\n", len(res.Refused))
		fmt.Fprintf(e.stdout, "  rejected for now:      %d\n", len(res.Later))
		fmt.Fprintf(e.stdout, "  not events (skipped):  %d\n", res.NotEvents)
		fmt.Fprintf(e.stdout, "  cut short (skipped):   %d\n", res.Torn)
		fmt.Fprintf(e.stdout, "  unreadable:            %d\n", res.Unreadable)
		for i, r := range slices.Concat(res.Refused, res.Later) {
			if i == reshipShown {
				fmt.Fprintf(e.stdout, "  ... and %d more\n", len(res.Refused)+len(res.Later)-reshipShown)
				break
			}
			id := "event " + r.EventID
			if r.EventID == "" {
				id = "document _id " + r.DocID
			}
			fmt.Fprintf(e.stdout, "  %s: %d %s: %s\n", id, r.Status, r.Type, r.Reason)
		}
	}
	if err != nil {
		return fmt.Errorf("reship %s: %w", path, err)
	}
	if !res.Done() {
		msg := "some documents are still not stored; the file keeps every record: fix the cause and run reship again"
		if res.Unreadable > 0 {
			msg = fmt.Sprintf("%d line(s) are no whole records (a last line dbprobe is writing, or one a crash cut short before dbprobe restarted, or a damaged record): look at them, and run reship again", res.Unreadable)
			if len(res.Refused)+len(res.Later) > 0 {
				msg += "; some documents are still not stored too"
			}
		}
		return errors.New(msg)
	}
	fmt.Fprintln(e.stdout, "Every document of the file is in Elasticsearch. To delete the file, stop dbprobe (it appends to the file), run reship again, and delete it if reship still says this.")
	return nil
}
