package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

var (
	t0    = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	step  = 100 * time.Millisecond
	blue  = named(detectortest.NewServer("uuid:3e11fa47-71ca-11e1-9e33-c80aa9429562", "10.0.0.1:3306"), "orders-blue")
	green = named(detectortest.NewServer("uuid:8a94f357-aab4-11df-86ab-c80aa9429562", "10.0.0.2:3306"), "orders-green")
)

func named(s *event.Server, host string) *event.Server { s.Hostname = host; return s }

func analyse(events ...[]*event.Event) *report.Report {
	d := detector.New(detector.Options{Reorder: 3 * time.Second})
	for _, e := range detectortest.ByCompletion(events...) {
		d.Observe(e)
	}
	d.Flush()
	return d.Report()
}

func phases(run, observer string, at func(int) time.Time, seq ...any) []*event.Event {
	var out []*event.Event
	for i := 0; i < len(seq); i += 2 {
		out = append(out, detectortest.Phase(run, observer, "orders", at(seq[i].(int)), seq[i+1].(string)))
	}
	return out
}

// The verdicts of the runs a DBA meets, as `dbprobe report --format
// summary` prints them and as the JSON report carries them.
func TestVerdictGolden(t *testing.T) {
	const run = "2025-03-01T10:00:00Z"
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * step) }
	cases := []struct {
		name string
		rep  func() *report.Report
		// want is what the paragraph must say, whatever the golden file.
		want []string
	}{
		{"switchover", func() *report.Report { return switchover(t) },
			[]string{"switched over at 10:00:06.950 ±0.051 s", "stuck on the old server", "19 writes failed", "writes down 3.000 s (2.898 to 3.101)"}},
		{"rollback", func() *report.Report {
			fresh := detectortest.NewStream(run, "probe-eu-1", "orders", event.ModeFresh, t0, step)
			fresh.Writes = true
			fresh.Server(blue).DNS("10.0.0.1").Up(40).Down(5, "offline").
				Server(green).DNS("10.0.0.2").Up(20).Down(5, "offline").
				Server(blue).DNS("10.0.0.1").Up(40)
			return analyse(fresh.Events(), phases(run, "probe-eu-1", at, 0, "CREATED", 30, "PREPARATION", 40, "IN_PROGRESS", 65, "PREPARATION", 75, "CREATED"))
		}, []string{"ROLLED BACK: switched to green at 10:00:04.200", "back from green to blue at 10:00:06.700"}},
		{"stuck-pool-accepted-writes", func() *report.Report {
			fresh := detectortest.NewStream(run, "probe-eu-1", "orders", event.ModeFresh, t0, step)
			fresh.Writes = true
			fresh.Server(blue).DNS("10.0.0.1").Up(40).Down(5, "offline").Server(green).DNS("10.0.0.2").Up(60)
			pooled := detectortest.NewStream(run, "probe-eu-1", "orders", event.ModePooled, t0, step)
			pooled.Writes = true
			// The old blue stays writable: the pool's writes land there.
			pooled.Server(blue).Up(85).Down(1, "conn_lost").Server(green).Up(19)
			return analyse(fresh.Events(), pooled.Events())
		}, []string{"STUCK ON THE OLD SERVER", "WRITES ACCEPTED THERE"}},
		{"no-switchover", func() *report.Report {
			fresh := detectortest.NewStream(run, "probe-eu-1", "orders", event.ModeFresh, t0, step)
			fresh.Writes = true
			fresh.Server(blue).DNS("10.0.0.1").Up(40).Down(2, "timeout").Up(40)
			return analyse(fresh.Events())
		}, []string{"no switchover seen", "reads down 0.202 s"}},
		{"observers-disagree", func() *report.Report {
			var all [][]*event.Event
			for _, o := range []struct {
				name string
				down int
			}{{"probe-eu-1a", 5}, {"probe-eu-1b", 25}} {
				fresh := detectortest.NewStream(run, o.name, "orders", event.ModeFresh, t0, step)
				fresh.Writes = true
				fresh.Server(blue).DNS("10.0.0.1").Up(40).Down(o.down, "offline").Server(green).DNS("10.0.0.2").Up(80 - o.down)
				all = append(all, fresh.Events())
			}
			return analyse(all...)
		}, []string{"OBSERVERS DISAGREE", "probe-eu-1a saw the cutover at 10:00:04.200, probe-eu-1b at 10:00:05.200: 1.000 s apart"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := c.rep()
			var sum bytes.Buffer
			if err := report.Render(&sum, "summary", rep); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(sum.String(), w) {
					t.Errorf("verdict lacks %q:\n%s", w, sum.String())
				}
			}
			golden(t, "verdict-"+c.name+".txt", sum.Bytes())
			vs, err := json.MarshalIndent(report.Verdicts(rep), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "verdict-"+c.name+".json", append(vs, '\n'))
			// Every format starts with the verdict.
			for _, f := range []string{"text", "markdown", "html"} {
				var b bytes.Buffer
				if err := report.Render(&b, f, rep); err != nil {
					t.Fatal(err)
				}
				out := b.String()
				v, tables := strings.Index(out, "Verdict"), strings.Index(out, "Fleet")
				if v < 0 || tables < 0 || v > tables {
					t.Errorf("%s: the verdict does not come before the fleet table", f)
				}
			}
		})
	}
}

// A pool stuck on the old server is not downtime of the switchover: the
// summary's worst-stream figures leave it out, whatever the run's length.
func TestStuckPoolIsNotDowntime(t *testing.T) {
	rep := switchover(t)
	tg := rep.Targets[0]
	if tg.WriteSeconds == nil {
		t.Fatal("target writes down = nil")
	}
	// The stale episode starts at the pooled stream's first probe surely
	// after the move (up to an interval after it): the pooled stream's
	// writes count up to 0.15 s more than the fresh stream's.
	if *tg.WriteSeconds > 3.2 {
		t.Fatalf("target writes down %v, want about the fresh stream's 3.000 s (the pooled stream's stale 2 s left out)", *tg.WriteSeconds)
	}
	v := report.Verdicts(rep)[0]
	if v.Existing == nil || v.Existing.Stale == nil || v.Existing.Stale.FailedWrites != 19 {
		t.Fatalf("existing connections %+v: want a stale finding with 19 failed writes", v.Existing)
	}
}

// Servers are named by their role in the Blue/Green deployment: from the
// rows of mysql.rds_topology when they name the server's instance, else
// by the switchover itself; without a deployment, by hostname:port
// (server_id).
func TestServerNamesByRole(t *testing.T) {
	const run = "r"
	a := detectortest.NewServer("uuid:a", "10.0.0.1:3306")
	b := detectortest.NewServer("uuid:b", "10.0.0.2:3306")
	a.Hostname, b.Hostname = "orders-1", "orders-1-x7"
	fresh := detectortest.NewStream(run, "o", "orders", event.ModeFresh, t0, step)
	fresh.Server(a).Up(10).Down(3, "offline").Server(b).Up(10)

	plain := report.Verdicts(analyse(fresh.Events()))[0]
	if !strings.HasPrefix(plain.FromServer, "orders-1:3306 (") {
		t.Errorf("without a deployment: from %q, want hostname:port (server_id)", plain.FromServer)
	}

	// The poller's rows say orders-1-x7 is the target (green): it is,
	// although it is the server new connections left.
	ph := detectortest.Phase(run, "o", "orders", t0, "CREATED")
	ph.DBProbe.BlueGreen.Rows = []string{"SOURCE AVAILABLE orders-1.example:3306", "TARGET AVAILABLE orders-1-x7.example:3306"}
	fresh2 := detectortest.NewStream(run, "o", "orders", event.ModeFresh, t0, step)
	fresh2.Server(b).Up(10).Down(3, "offline").Server(a).Up(10)
	v := report.Verdicts(analyse(fresh2.Events(), []*event.Event{ph}))[0]
	if v.FromServer != event.RoleGreen || v.ToServer != event.RoleBlue {
		t.Errorf("with rds_topology rows: from %q to %q, want green to blue", v.FromServer, v.ToServer)
	}

	// Phases but no rows naming a server: the switchover names them.
	ph2 := detectortest.Phase(run, "o", "orders", t0, "CREATED")
	v = report.Verdicts(analyse(fresh.Events(), []*event.Event{ph2}))[0]
	if v.FromServer != event.RoleBlue || v.ToServer != event.RoleGreen {
		t.Errorf("by the switchover: from %q to %q, want blue to green", v.FromServer, v.ToServer)
	}
}

// The replication lag the verdict gives is the one before the switch:
// the lag green had to catch up.
func TestVerdictReplicationLagBeforeTheSwitch(t *testing.T) {
	fresh := detectortest.NewStream("r", "o", "orders", event.ModeFresh, t0, step)
	fresh.Server(blue).DNS("10.0.0.1").Up(20).Down(3, "offline").Server(green).DNS("10.0.0.2").Up(20)
	events := fresh.Events()
	for i, e := range events {
		lag := 0.01
		if i == 15 {
			lag = 0.2
		}
		e.DBProbe.Replication = &event.Replicate{LagSeconds: &lag}
	}
	v := report.Verdicts(analyse(events))[0]
	if !strings.Contains(v.Text, "replication lag to green before the switch at most 0.200 s") {
		t.Errorf("verdict %q, want the lag before the switch", v.Text)
	}
}
