package lab_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/lab"
)

// TestControlDrivesALabByHand brings a lab up as `dbprobe lab up` does, in
// the single-port fallback (blue and green on 127.0.0.1 behind the
// forwarder), and drives it through the control socket as `dbprobe lab
// switchover` and `dbprobe lab down` do.
func TestControlDrivesALabByHand(t *testing.T) {
	l := startLab(t, true)
	if !l.SinglePort() {
		t.Fatal("SinglePort: got false, want true")
	}
	if l.Blue().Host() != "127.0.0.1" || l.Green().Host() != "127.0.0.1" || l.Blue().Port() == l.Green().Port() {
		t.Fatalf("single-port lab: blue %s, green %s; want both on 127.0.0.1 with distinct ports", l.Blue().Addr(), l.Green().Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctrl, c := serveLab(t, ctx, l)
	cfg := filepath.Join(l.Dir(), "dbprobe.yaml")
	if c.Info.Endpoint != l.EndpointAddr() || c.Info.Config != cfg || !c.Info.SinglePort || c.Info.PID != os.Getpid() {
		t.Errorf("info: got %+v, want endpoint %s, config %s, single port, pid %d", c.Info, l.EndpointAddr(), cfg, os.Getpid())
	}

	before := endpointConn(t, l)
	if id, err := serverID(t, before); err != nil || id != 101 {
		t.Fatalf("endpoint before: got server %d (%v), want blue (101)", id, err)
	}
	var seen []string
	tr, err := c.Switchover(ctx, instant(), func(s lab.Step) { seen = append(seen, s.Name) })
	if err != nil {
		t.Fatalf("switchover over the control socket: %v", err)
	}
	if !tr.Switched() || !slices.Equal(seen, stepNames(tr)) {
		t.Errorf("got outcome %s, steps streamed %v, steps in the truth %v; want switched and the same steps", tr.Outcome, seen, stepNames(tr))
	}
	files, _ := filepath.Glob(filepath.Join(l.Dir(), "truth-*.json"))
	if len(files) != 1 {
		t.Errorf("ground truth files kept by the lab: got %v, want one", files)
	}
	// The forwarder moved: a new connection reaches green, while the
	// connection from before was dropped with the rest.
	if _, err := serverID(t, before); err == nil {
		t.Error("the connection opened before the switchover still works; it should have been killed")
	}
	if id, err := serverID(t, endpointConn(t, l)); err != nil || id != 202 {
		t.Errorf("endpoint after: got server %d (%v), want green (202)", id, err)
	}
	if _, err := c.Switchover(ctx, instant(), nil); err == nil {
		t.Error("a second switchover of a switched lab was accepted")
	}

	if err := c.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	select {
	case <-ctrl.Down():
	case <-ctx.Done():
		t.Fatal("the lab was not told to stop")
	}
	if err := ctrl.Close(); err != nil {
		t.Errorf("close control: %v", err)
	}
	if _, err := lab.Dial(ctx, l.Dir()); !errors.Is(err, lab.ErrNoLab) {
		t.Errorf("dial after close: got %v, want ErrNoLab", err)
	}
}

// serveLab writes l's configuration and serves its control socket as
// `dbprobe lab up` does, and dials it.
func serveLab(t *testing.T, ctx context.Context, l *lab.Lab) (*lab.Control, *lab.Client) {
	t.Helper()
	cfg := filepath.Join(l.Dir(), "dbprobe.yaml")
	if err := l.WriteConfig(cfg, lab.ConfigOptions{}); err != nil {
		t.Fatal(err)
	}
	ctrl, err := l.Serve(l.Info(cfg))
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() { ctrl.Close() })
	c, err := lab.Dial(ctx, l.Dir())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return ctrl, c
}

// TestControlRunsEveryScenario drives the failover, reboot and proxy
// scenarios of labs brought up by hand through the control socket, and
// checks where the endpoint leads after each.
func TestControlRunsEveryScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("reboot, then failover", func(t *testing.T) {
		l := startLab(t, false)
		_, c := serveLab(t, ctx, l)
		tr, err := c.Run(ctx, lab.ScenarioReboot, lab.RebootOptions{}, nil)
		want := []string{lab.StepWriterStopping, lab.StepWriterStopped, lab.StepWriterStarted}
		if err != nil || tr.Outcome != lab.OutcomeRestarted || !slices.Equal(stepNames(tr), want) || tr.Scenario != lab.ScenarioReboot {
			t.Fatalf("reboot: %v, truth %+v; want outcome %s and steps %v", err, tr, lab.OutcomeRestarted, want)
		}
		if id, err := serverID(t, endpointConn(t, l)); err != nil || id != 101 {
			t.Errorf("endpoint after the reboot: server %d (%v), want blue (101) again", id, err)
		}
		if _, err := c.Run(ctx, lab.ScenarioProxy, lab.DefaultProxy(), nil); err == nil || !strings.Contains(err.Error(), "no proxy in front") {
			t.Errorf("proxy switch of a lab without a proxy: %v; want a refusal", err)
		}
		if _, err := c.Run(ctx, lab.ScenarioFailover, lab.FailoverOptions{PromoteDelay: -time.Second}, nil); err == nil || !strings.Contains(err.Error(), "promote-delay must not be negative") {
			t.Errorf("failover with a negative delay: %v; want it refused", err)
		}
		tr, err = c.Run(ctx, lab.ScenarioFailover, lab.FailoverOptions{}, nil)
		want = []string{lab.StepWriterKilled, lab.StepReplicaPromoted, lab.StepDNSSwitched}
		if err != nil || !tr.Switched() || !slices.Equal(stepNames(tr), want) {
			t.Fatalf("failover: %v, truth %+v; want switched with steps %v", err, tr, want)
		}
		if id, err := serverID(t, endpointConn(t, l)); err != nil || id != 202 {
			t.Errorf("endpoint after the failover: server %d (%v), want green (202)", id, err)
		}
		if ro := query(t, l.Green(), "SELECT @@read_only"); ro != "0" {
			t.Errorf("green's read_only after the failover: %s, want 0", ro)
		}
		if _, err := c.Run(ctx, lab.ScenarioReboot, lab.RebootOptions{}, nil); err == nil || !strings.Contains(err.Error(), "already moved to green") {
			t.Errorf("a reboot after the failover: %v; want a refusal", err)
		}
	})

	t.Run("proxy", func(t *testing.T) {
		l := startLabWith(t, lab.Options{Proxy: true})
		_, c := serveLab(t, ctx, l)
		if !c.Info.Proxy {
			t.Error("the lab's info does not say it has a proxy")
		}
		before := endpointConn(t, l)
		if id, err := serverID(t, before); err != nil || id != 101 {
			t.Fatalf("through the proxy before: server %d (%v), want blue (101)", id, err)
		}
		if _, err := c.Switchover(ctx, instant(), nil); err == nil || !strings.Contains(err.Error(), "has a proxy in front") {
			t.Errorf("a Blue/Green switchover behind the proxy: %v; want a refusal", err)
		}
		tr, err := c.Run(ctx, lab.ScenarioProxy, lab.ProxyOptions{MaxPause: 10 * time.Second}, nil)
		want := []string{lab.StepProxyPaused, lab.StepBlueReadOnly, lab.StepCaughtUp, lab.StepReplicaPromoted, lab.StepProxyResumed}
		if err != nil || !tr.Switched() || !slices.Equal(stepNames(tr), want) {
			t.Fatalf("proxy switch: %v, truth %+v; want switched with steps %v", err, tr, want)
		}
		// The connection from before is still up and now reaches green.
		if id, err := serverID(t, before); err != nil || id != 202 {
			t.Errorf("the connection from before the switch: server %d (%v), want green (202) on the same connection", id, err)
		}
		if _, err := c.Run(ctx, lab.ScenarioFailover, lab.DefaultFailover(), nil); err == nil || !strings.Contains(err.Error(), "has a proxy in front") {
			t.Errorf("a failover of a lab with a proxy: %v; want a refusal", err)
		}
	})
}

func TestDialFindsNoLab(t *testing.T) {
	ctx := context.Background()
	empty := t.TempDir()
	if _, err := lab.Dial(ctx, empty); !errors.Is(err, lab.ErrNoLab) {
		t.Errorf("dial an empty dir: got %v, want ErrNoLab", err)
	}
	// A lab that died leaves its info file behind.
	stale := t.TempDir()
	info := `{"pid": 1, "control": "` + filepath.Join(stale, lab.SocketFile) + `"}`
	if err := os.WriteFile(filepath.Join(stale, lab.InfoFile), []byte(info), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Dial(ctx, stale); !errors.Is(err, lab.ErrNoLab) {
		t.Errorf("dial a dead lab: got %v, want ErrNoLab", err)
	}
}

func TestStartLeavesForeignServersDirAlone(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, lab.ServersDir, "precious")
	if err := os.MkdirAll(mine, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := lab.Start(context.Background(), lab.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "was not made by dbprobe lab") {
		t.Fatalf("start in a dir whose %s is not the lab's: got %v, want a refusal", lab.ServersDir, err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the foreign directory is gone: %v", err)
	}
}
