package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/daemon"
	"github.com/dbprobe/dbprobe/sink/journal"
	"github.com/dbprobe/dbprobe/web"
)

// parseFlags parses a subcommand's flags; -h prints usage and is not an
// error, anything else wrong is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string, e *env) (help bool, err error) {
	fs.SetOutput(e.stderr)
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

// loadConfig loads the file and turns configuration errors into usage
// errors, so they exit 2.
func loadConfig(path string, e *env) (*config.Config, error) {
	if path == "" {
		return nil, usageError{errors.New("--config is required")}
	}
	cfg, err := config.LoadFile(path, e.getenv)
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
	cfgPath := fs.String("config", "dbprobe.yaml", "configuration file")
	webCfg := fs.String("web.config.file", "", "Prometheus web configuration file (TLS, basic auth); overrides http.web_config_file")
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, e.stderr)
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: buildVersion(), Summary: e.stdout, WebConfigFile: *webCfg})
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
	go func() {
		<-ctx.Done()
		log.Info("stopping: finishing in-flight probes and flushing the journal; send the signal again to exit at once",
			"cause", context.Cause(ctx))
	}()
	return d.Run(ctx)
}
