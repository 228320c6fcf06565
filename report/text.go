package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Text writes the report for a terminal: the summary `dbprobe run` prints
// on shutdown and `dbprobe report --format text`.
func Text(w io.Writer, rep *Report) error {
	d := layout(rep)
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, d.title)
	for _, l := range d.lines {
		fmt.Fprintln(bw, l)
	}
	for _, sec := range d.sections {
		fmt.Fprintf(bw, "\n== %s ==\n", sec.title)
		for _, l := range sec.lines {
			fmt.Fprintf(bw, "* %s\n", l)
		}
		for _, t := range sec.tables {
			fmt.Fprintf(bw, "\n%s:\n", t.title)
			var tb strings.Builder
			tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "  %s\n", strings.Join(t.head, "\t"))
			for _, r := range t.rows {
				fmt.Fprintf(tw, "  %s\n", strings.Join(r, "\t"))
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
