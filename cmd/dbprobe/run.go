package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/console"
	"github.com/dbprobe/dbprobe/daemon"
	"github.com/dbprobe/dbprobe/live"
	"github.com/dbprobe/dbprobe/sink/journal"
	"github.com/dbprobe/dbprobe/web"
)

// loadConfig loads the file and turns configuration errors into usage
// errors, so they exit 2.
func loadConfig(path string, e *env) (*config.Config, error) {
	return loadConfigWith(path, e, config.Overrides{})
}

// loadConfigWith is loadConfig with command-line overrides.
func loadConfigWith(path string, e *env, ov config.Overrides) (*config.Config, error) {
	if path == "" {
		return nil, usageError{errors.New("--config is required")}
	}
	cfg, err := config.Load(path, e.getenv, ov)
	var ce *config.Error
	if errors.As(err, &ce) {
		return nil, usageError{err}
	}
	return cfg, err
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

func runCmd(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("dbprobe run", flag.ContinueOnError)
	cfgPath := fs.String("config", "dbprobe.yaml", "configuration `file`")
	var ov config.Overrides
	fs.StringVar(&ov.WebListen, "web.listen-address", "", "`host:port` to serve metrics and the status page on; overrides http.listen (\"\" turns the server off)")
	fs.StringVar(&ov.WebConfigFile, "web.config.file", "", "Prometheus web configuration `file` (TLS, basic auth); overrides http.web_config_file")
	fs.BoolVar(&ov.WebEnableLifecycle, "web.enable-lifecycle", false, "serve POST /-/reload (SIGHUP reloads either way); overrides http.enable_lifecycle")
	fs.StringVar(&ov.LogLevel, "log.level", "", "log `level`: debug, info, warn or error; overrides log.level")
	fs.StringVar(&ov.LogFormat, "log.format", "", "log `format`: logfmt or json; overrides log.format")
	fs.StringVar(&ov.RunID, "run-id", "", "`id` of the run, shared by every observer of one switchover so their reports merge; overrides run_id")
	noTTY := fs.Bool("no-tty", false, "plain log lines on a terminal too, instead of the live view")
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	ov.Set = setFlags(fs)
	cfg, err := loadConfigWith(*cfgPath, e, ov)
	if err != nil {
		return err
	}
	logOut, summary := e.stderr, e.stdout
	var view *console.View
	var board *live.Board // set before the view draws: it draws from Run on
	if e.terminalSize != nil && !*noTTY {
		// The view owns the terminal: log lines (the findings) scroll
		// above its block, the summary prints below it at the end.
		view = console.New(console.Options{Out: e.stdout, Board: func() []live.Target { return board.Snapshot() },
			Size: e.terminalSize, Title: "dbprobe"})
		logOut, summary = view, view
	}
	log := newLogger(cfg.Log, logOut)
	board = live.New(live.Options{Logger: log})
	load := func() (*config.Config, error) { return config.Load(*cfgPath, e.getenv, ov) }
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: buildVersion(), Summary: summary, Board: board, Load: load})
	if errors.Is(err, web.ErrWebConfig) {
		return usageError{err}
	}
	// Another dbprobe on the directory, or a directory not safe to write:
	// the configuration points at the wrong place.
	if re := (*journal.RefusedError)(nil); errors.As(err, &re) {
		return usageError{fmt.Errorf("sinks.journal.dir: %w", re)}
	}
	if err != nil {
		return err
	}
	if view != nil {
		view.SetTitle("dbprobe " + d.RunID())
		viewDone := make(chan struct{})
		defer func() { <-viewDone }()
		go func() {
			defer close(viewDone)
			view.Run(ctx)
		}()
	}
	go func() {
		for {
			select {
			case <-e.hangups:
				log.Info("SIGHUP: reloading the configuration", "config", *cfgPath)
				_ = d.Reload(ctx) // logs and counts its outcome
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		<-ctx.Done()
		log.Info("stopping: finishing in-flight probes and flushing the journal; send the signal again to exit at once",
			"cause", context.Cause(ctx))
	}()
	return d.Run(ctx)
}
