package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dbprobe/dbprobe/internal/safetext"
)

// Text writes the report for a terminal: the summary `dbprobe run` prints
// on shutdown and `dbprobe report --format text`. Servers choose some of
// its strings (identities, hostnames): safetext.Line keeps them from
// driving the terminal or starting lines of their own.
func Text(w io.Writer, rep *Report) error {
	d := layout(rep)
	q := safetext.Line
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, q(d.title))
	for _, l := range d.lines {
		fmt.Fprintln(bw, q(l))
	}
	for _, sec := range d.sections {
		fmt.Fprintf(bw, "\n== %s ==\n", q(sec.title))
		for _, l := range sec.lines {
			fmt.Fprintf(bw, "* %s\n", q(l))
		}
		for _, t := range sec.tables {
			fmt.Fprintf(bw, "\n%s:\n", q(t.title))
			var tb strings.Builder
			tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "  %s\n", strings.Join(t.head, "\t"))
			for _, r := range t.rows {
				cells := make([]string, len(r))
				for i, c := range r {
					cells[i] = q(c)
				}
				fmt.Fprintf(tw, "  %s\n", strings.Join(cells, "\t"))
			}
			tw.Flush()
			// Empty last columns leave padding behind.
			for line := range strings.Lines(tb.String()) {
				fmt.Fprintln(bw, strings.TrimRight(line, " \n"))
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render text report: %w", err)
	}
	return nil
}

// Summary writes only the verdicts, one paragraph per target, as plain
// text to paste into a change ticket.
func Summary(w io.Writer, rep *Report) error {
	bw := bufio.NewWriter(w)
	vs := Verdicts(rep)
	if len(vs) == 0 {
		fmt.Fprintln(bw, "No probes in this report.")
	}
	for i, v := range vs {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		fmt.Fprintln(bw, safetext.Line(v.Text))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render summary: %w", err)
	}
	return nil
}
