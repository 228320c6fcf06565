package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dbprobe/dbprobe/awsrds"
	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/daemon"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/redact"
	"github.com/dbprobe/dbprobe/internal/safetext"
	"github.com/dbprobe/dbprobe/preflight"
	"github.com/dbprobe/dbprobe/probe"
)

// errCheckFailed makes check exit 1 after printing what failed.
var errCheckFailed = errors.New("check found problems")

func checkCmd(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("dbprobe check", flag.ContinueOnError)
	cfgPath := fs.String("config", "dbprobe.yaml", "configuration file")
	create := fs.Bool("create-heartbeat-table", false, "create a missing heartbeat table (needs CREATE on its schema)")
	syncTimeout := fs.Duration("sync-timeout", 10*time.Second, "how long the data sync check waits for the marker row on green")
	if help, err := parseFlags(fs, args, e); help || err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "config %s: ok (%d targets)\n", *cfgPath, len(cfg.Targets))
	failed := false
	secrets := redact.New(cfg.Secrets()...)
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		pt := preflight.Target{
			Name:        t.Name,
			Blue:        t.MySQL(),
			BlueGreen:   t.BlueGreen,
			Observer:    cfg.Observer.Name,
			CreateTable: *create,
			SyncTimeout: *syncTimeout,
			Resolver:    &probe.Resolver{Server: t.EffectiveDNS().Server},
		}
		if t.Write != nil {
			pt.WriteTable = t.Write.Table
		}
		if t.Green != nil {
			pt.Green = t.Green.MySQL()
		}
		pctx, cancel := context.WithTimeout(ctx, *syncTimeout+time.Minute)
		results := preflight.Run(pctx, pt)
		cancel()
		fmt.Fprintf(e.stdout, "\npreflight %s:\n", t.Name)
		printIAM(ctx, e.stdout, "iam", &t.Endpoint)
		if t.Green != nil {
			printIAM(ctx, e.stdout, "iam green", t.Green)
		}
		printAWSEvents(ctx, e.stdout, t)
		for _, r := range results {
			fmt.Fprintf(e.stdout, "  %-4s  %-20s %s\n", r.Level, r.Check, safetext.Line(secrets.String(r.Detail)))
			if r.Fix != "" {
				fmt.Fprintf(e.stdout, "        %-20s -> %s\n", "", r.Fix)
			}
			failed = failed || r.Level == preflight.Fail
		}
	}
	env := &probe.Env{
		RunID:    "check",
		Observer: daemon.Observer(cfg, buildVersion()),
		Secrets:  cfg.Secrets(),
		Logger:   newLogger(cfg.Log, io.Discard),
	}
	for _, s := range probe.NewStreams(daemon.Targets(cfg), env) {
		ev := s.ProbeOnce(ctx)
		printProbe(e.stdout, s.Key(), ev)
		if ev.DBProbe.Failure != nil {
			failed = true
		}
	}
	if failed {
		return errCheckFailed
	}
	return nil
}

// printIAM says whose AWS identity signs the endpoint's IAM tokens and for
// which region and endpoint, so a wrong role or region shows before a run.
func printIAM(ctx context.Context, w io.Writer, label string, ep *config.Endpoint) {
	src := ep.IAM()
	if src == nil {
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fmt.Fprintf(w, "  %-4s  %-20s tokens for %s@%s in %s, signed as %s\n", "info", label, ep.MySQL().User, src.Endpoint(), src.Region(),
		safetext.Line(awsrds.Identity(ictx, *ep.AWSConfig())))
}

// printAWSEvents polls the target's AWS events once, so missing
// permissions or a wrong region show before a run. It warns rather than
// fails: AWS's events never affect probing.
func printAWSEvents(ctx context.Context, w io.Writer, t *config.Target) {
	if t.AWSEvents == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg := *t.AWSConfig()
	p := &awsrds.EventPoller{Target: t.Name, Sources: t.AWSEvents.Sources(), Client: awsrds.NewRDSClient(cfg, "")}
	n := 0
	if err := p.Poll(pctx, func(*event.Event) { n++ }); err != nil {
		fmt.Fprintf(w, "  %-4s  %-20s %s\n", preflight.Warn, "aws_events", safetext.Line(err.Error()))
		fmt.Fprintf(w, "        %-20s -> %s\n", "", "check aws.region and that this identity may call rds:DescribeEvents (and rds:DescribeBlueGreenDeployments)")
		return
	}
	fmt.Fprintf(w, "  %-4s  %-20s AWS answers in %s: %d events of %d sources in the last 15 minutes\n", preflight.Pass, "aws_events", cfg.Region, n, len(p.Sources))
}

// printProbe prints one probe's result. Every string the server or the
// network chose (messages, identity, version, DNS answers) goes through
// safetext.Line: none may move the cursor or start a line of its own.
func printProbe(w io.Writer, k event.StreamKey, ev *event.Event) {
	q := safetext.Line
	d := ev.DBProbe
	status := "ok"
	if d.Failure != nil {
		status = "FAIL " + d.Failure.Class
	}
	fmt.Fprintf(w, "\n%s/%s: %s in %.1f ms\n", k.Target, k.Mode, status, d.Latency.Total)
	if d.DNS != nil {
		fmt.Fprintf(w, "  dns       %s -> %s", d.DNS.Name, q(strings.Join(d.DNS.Answers, ", ")))
		if d.DNS.CNAME != "" {
			fmt.Fprintf(w, " (cname %s)", q(d.DNS.CNAME))
		}
		if d.DNS.TTL != nil {
			fmt.Fprintf(w, " ttl %ds", *d.DNS.TTL)
		}
		fmt.Fprintln(w)
	}
	if ev.Destination != nil && ev.Destination.Address != "" {
		fmt.Fprintf(w, "  connected %s\n", q(ev.Destination.Address))
	}
	if s := d.Server; s != nil {
		fmt.Fprintf(w, "  server    %s (%s %s)\n", q(s.Identity), q(s.Version), q(s.VersionComment))
		fmt.Fprintf(w, "  read-only read_only=%s super_read_only=%s innodb_read_only=%s\n",
			onOff(s.ReadOnly), onOff(s.SuperReadOnly), onOff(s.InnoDBReadOnly))
	}
	if d.Write != nil {
		fmt.Fprintf(w, "  write     ok=%t\n", d.Write.OK)
	}
	if ev.Error != nil {
		fmt.Fprintf(w, "  error     %s in %s: %s\n", ev.Error.Type, d.Failure.Phase, q(ev.Error.Message))
	}
}

func onOff(b *bool) string {
	switch {
	case b == nil:
		return "n/a"
	case *b:
		return "ON"
	}
	return "OFF"
}
