package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// parseFlags parses a subcommand's flags; -h prints usage and is not an
// error, anything else wrong is a usage error (exit 2). Flags are shown
// with two dashes, as the Prometheus exporters show theirs; Go's flag
// package accepts one or two.
func parseFlags(fs *flag.FlagSet, args []string, e *env) (help bool, err error) {
	fs.SetOutput(e.stderr)
	fs.Usage = func() { printFlags(fs.Output(), fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, usageError{err}
	}
	if fs.NArg() > 0 {
		return false, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return false, nil
}

// printFlags is flag.PrintDefaults with "--name".
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s [flags]\n\nflags:\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !zeroDefault(f) {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func zeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

// setFlags is the set of flags given on the command line, "--name".
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set["--"+f.Name] = true })
	return set
}
