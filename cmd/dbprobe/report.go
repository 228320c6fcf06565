package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/analysis"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/elasticsearch"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// reportCmd analyses a journal offline, streaming it: memory depends on the
// number of streams and findings, not on the journal's length.
func reportCmd(ctx context.Context, args []string, e *env) error {
	fl := flag.NewFlagSet("dbprobe report", flag.ContinueOnError)
	var dirs []string
	fl.Func("journal", "journal `directory` to analyse (required); repeat it, or give a directory of journals, to merge the observers of one run", func(v string) error {
		dirs = append(dirs, v)
		return nil
	})
	runID := fl.String("run-id", "", "run to report (default: the latest run in the journal)")
	fromText := fl.String("from", "", "ignore probes scheduled before this instant (RFC 3339, e.g. 2025-03-01T10:00:00Z)")
	toText := fl.String("to", "", "ignore probes scheduled after this instant (RFC 3339)")
	target := fl.String("target", "", "report only this target")
	labels := labelFlag{}
	fl.Var(labels, "label", "report only targets with this label, name=value (repeatable: all must match)")
	format := fl.String("format", "text", "output format: "+strings.Join(report.Formats, ", "))
	output := fl.String("output", "", "write the report to this file (default: standard output)")
	esAddr := fl.String("es", "", "read the run from Elasticsearch at this URL instead of a journal (needs --run-id; credentials from DBPROBE_ES_* variables, see docs/elasticsearch.md)")
	esIndex := fl.String("es-index", elasticsearch.SearchIndex, "with --es: the data stream or pattern to read")
	if help, err := parseFlags(fl, args, e); help || err != nil {
		return err
	}
	if len(dirs) == 0 && *esAddr == "" {
		return usageError{errors.New("--journal is required (or --es to read from Elasticsearch)")}
	}
	if len(dirs) > 0 && *esAddr != "" {
		return usageError{errors.New("give --journal or --es, not both")}
	}
	if !slices.Contains(report.Formats, *format) {
		return usageError{fmt.Errorf("--format: must be one of %s (got %q)", strings.Join(report.Formats, ", "), *format)}
	}
	from, err := parseInstant("--from", *fromText)
	if err != nil {
		return err
	}
	to, err := parseInstant("--to", *toText)
	if err != nil {
		return err
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return usageError{fmt.Errorf("--to (%s) must be after --from (%s)", *toText, *fromText)}
	}
	a := analysis.New(analysis.Options{RunID: *runID, From: from, To: to, Target: *target, Labels: labels})
	if *esAddr != "" {
		return reportFromES(ctx, e, a, esReport{runID: *runID, addr: *esAddr, index: *esIndex, format: *format, output: *output})
	}
	journals, err := journalDirs(dirs)
	if err != nil {
		return err
	}
	for _, dir := range journals {
		st, err := a.ScanJournal(ctx, dir)
		if err != nil {
			return err
		}
		if st.Bad > 0 {
			fmt.Fprintf(e.stderr, "dbprobe report: skipped %d journal lines that do not decode in %s (first ending at %s)\n", st.Bad, dir, st.FirstBad)
		}
	}
	rep, err := pickedReport(a, e)
	if err != nil {
		return err
	}
	return writeReport(e, rep, *format, *output)
}

// writeReport renders rep to output, or to standard output.
func writeReport(e *env, rep *report.Report, format, output string) error {
	if output != "" {
		return report.WriteFile(output, format, rep)
	}
	return report.Render(e.stdout, format, rep)
}

// journalDirs expands the --journal arguments: a journal directory as it
// is, a directory of journals (one per observer, as collected from several
// dbprobes) into those journals, sorted.
func journalDirs(args []string) ([]string, error) {
	var out []string
	for _, dir := range args {
		segs, err := journal.Segments(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, usageError{fmt.Errorf("--journal: no such directory %q", dir)}
		}
		if err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		if len(segs) > 0 {
			out = append(out, dir)
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		n := len(out)
		for _, en := range entries {
			if !en.IsDir() {
				continue
			}
			sub := filepath.Join(dir, en.Name())
			if segs, err := journal.Segments(sub); err == nil && len(segs) > 0 {
				out = append(out, sub)
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("journal %s holds no segments (events-*.jsonl), nor do its subdirectories", dir)
		}
	}
	return out, nil
}

// labelFlag collects --label name=value.
type labelFlag map[string]string

func (l labelFlag) String() string { return report.LabelText(l) }

func (l labelFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, e.g. team=payments (got %q)", s)
	}
	if old, dup := l[k]; dup && old != v {
		return fmt.Errorf("%s is given twice (%s and %s); a target has one value per label", k, old, v)
	}
	l[k] = v
	return nil
}

func parseInstant(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s: want an RFC 3339 instant such as 2025-03-01T10:00:00Z (got %q)", flagName, s)}
	}
	return t, nil
}

// pickedReport is the report of the analysis, with its selection errors
// told as errors in the flags and a note when the journal holds several
// runs and none was asked for.
func pickedReport(a *analysis.Analysis, e *env) (*report.Report, error) {
	rep, c, err := a.Report()
	var sel *analysis.SelectionError
	switch {
	case errors.As(err, &sel) && sel.Option == "range":
		return nil, usageError{errors.New("no probe events between --from and --to")}
	case errors.As(err, &sel):
		return nil, usageError{fmt.Errorf("--%s: %w", sel.Option, sel.Err)}
	case err != nil:
		return nil, err
	}
	if c.Latest && len(c.Runs) > 1 {
		fmt.Fprintf(e.stderr, "dbprobe report: the journal holds %d runs (%s); reporting the latest, %q (choose another with --run-id)\n",
			len(c.Runs), strings.Join(c.Runs, ", "), c.RunID)
	}
	return rep, nil
}
