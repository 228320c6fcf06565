package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Markdown writes the report as GitHub-flavoured Markdown, for tickets and
// post-mortems.
func Markdown(w io.Writer, rep *Report) error {
	d := layout(rep)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# %s\n\n", mdEscape(d.title))
	for _, l := range d.lines {
		fmt.Fprintf(bw, "%s\n\n", mdEscape(l))
	}
	for _, sec := range d.sections {
		fmt.Fprintf(bw, "## %s\n\n", mdEscape(sec.title))
		for _, l := range sec.lines {
			fmt.Fprintf(bw, "- %s\n", mdEscape(l))
		}
		if len(sec.lines) > 0 {
			fmt.Fprintln(bw)
		}
		for _, t := range sec.tables {
			if sec.target != "" {
				fmt.Fprintf(bw, "### %s\n\n", mdEscape(t.title))
			}
			fmt.Fprintf(bw, "| %s |\n|", strings.Join(mapStrings(t.head, mdEscape), " | "))
			for i := range t.head {
				if i < len(t.num) && t.num[i] {
					fmt.Fprint(bw, "---:|")
				} else {
					fmt.Fprint(bw, "---|")
				}
			}
			fmt.Fprintln(bw)
			for _, r := range t.rows {
				fmt.Fprintf(bw, "| %s |\n", strings.Join(mapStrings(r, mdEscape), " | "))
			}
			fmt.Fprintln(bw)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render markdown report: %w", err)
	}
	return nil
}

// mdEscape keeps text from server answers (hostnames, identities) from
// being read as Markdown or breaking a table.
var mdReplacer = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "`", "\\`", "<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`, "\n", " ")

func mdEscape(s string) string { return mdReplacer.Replace(s) }

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}
