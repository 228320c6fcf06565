// Command dbprobe measures what a MySQL switchover does to its clients.
//
// main only wires: each subcommand lives in its own file as a function that
// takes its arguments and an environment and returns an error. Exit codes:
// 0 success, 1 runtime failure, 2 bad usage or bad configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// env is what a subcommand may touch of the outside world; tests build their
// own.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// signals delivers SIGINT/SIGTERM; run uses it to tell a first signal
	// (graceful stop) from a second (exit at once).
	signals <-chan os.Signal
	// hangups delivers SIGHUP to `dbprobe run`, which reloads its
	// configuration on it instead of dying with the ssh session.
	hangups <-chan os.Signal
	exit    func(code int)
	// terminalSize is set when stdout is a terminal: `dbprobe run` then
	// draws its live view there. It returns columns and rows.
	terminalSize func() (cols, rows int)
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e *env) error
}

func commands() []command {
	return []command{
		{"run", "probe the configured targets until stopped", runCmd},
		{"check", "validate the config and probe each target once", checkCmd},
		{"report", "analyse a journal: interruption windows, cutovers, stale connections", reportCmd},
		{"reship", "send the documents Elasticsearch refused for good again, once their cause is fixed", reshipCmd},
		{"lab", "reproduce a Blue/Green switchover and compare dbprobe's report with the ground truth", labCmd},
		{"version", "print the version", versionCmd},
	}
}

// usageError makes dbprobe exit 2: the user asked for something that cannot
// be done as asked (bad flags, bad config).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func main() {
	os.Exit(mainExit(context.Background(), os.Args[1:], processEnv(os.Args[1:])))
}

// processEnv is the outside world of this process, for the command in args.
func processEnv(args []string) *env {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, signals: sig, exit: os.Exit}
	if len(args) > 0 && args[0] == "run" {
		// Only run catches SIGHUP: the other commands keep the default
		// (a hangup ends them), as a shell user expects.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		e.hangups = hup
	}
	if fd := int(os.Stdout.Fd()); term.IsTerminal(fd) {
		e.terminalSize = func() (int, int) {
			w, h, err := term.GetSize(fd)
			if err != nil {
				return 0, 0
			}
			return w, h
		}
	}
	return e
}

func mainExit(ctx context.Context, args []string, e *env) int {
	err := dispatch(ctx, args, e)
	if err == nil {
		return 0
	}
	fmt.Fprintf(e.stderr, "dbprobe: %v\n", err)
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

func dispatch(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		if len(args) == 0 {
			return usageError{errors.New("missing command")}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			ctx, stop := context.WithCancelCause(ctx)
			defer stop(nil)
			done := make(chan struct{})
			defer close(done)
			go watchSignals(e, stop, done)
			return c.run(ctx, args[1:], e)
		}
	}
	usage(e.stderr)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dbprobe <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'dbprobe <command> --help' for the flags of a command.")
}

// errSignal is the cause of a context cancelled by SIGINT or SIGTERM.
type errSignal struct{ sig os.Signal }

func (e errSignal) Error() string { return "received " + e.sig.String() }

// watchSignals turns the first SIGINT/SIGTERM into a cancelled context,
// which every command treats as "stop what you are doing, cleanly", and the
// second into an immediate exit. It returns when done is closed.
func watchSignals(e *env, stop context.CancelCauseFunc, done <-chan struct{}) {
	select {
	case s := <-e.signals:
		stop(errSignal{s})
	case <-done:
		return
	}
	select {
	case <-e.signals:
		fmt.Fprintln(e.stderr, "dbprobe: second signal: exiting at once")
		e.exit(1)
	case <-done:
	}
}
