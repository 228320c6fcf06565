package lab_test

import (
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/lab"
)

// The scenarios' acceptance tests run each scenario end to end at 100 ms
// and hold every boundary dbprobe reports to one interval plus
// lab.DefaultSlack of when the lab made it happen. Each lab has its own
// directory and ports, so they run beside any other test.

func TestFailoverMatchesGroundTruth(t *testing.T) {
	needMariaDB(t)
	profiles := []struct {
		name   string
		hang   bool
		single bool
	}{
		{"the writer dies", false, false},
		{"the writer hangs", true, false},
		// Without loopback aliases the forwarder moves new connections and
		// the DNS answer never changes.
		{"the writer dies, single port", false, true},
	}
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			runLab(t, lab.RunOptions{Scenario: lab.ScenarioFailover, SinglePort: p.single,
				Failover: lab.FailoverOptions{PromoteDelay: 500 * time.Millisecond, DNSDelay: time.Second, Hang: p.hang}})
		})
	}
}

func TestRebootMatchesGroundTruth(t *testing.T) {
	needMariaDB(t)
	runLab(t, lab.RunOptions{Scenario: lab.ScenarioReboot, Reboot: lab.RebootOptions{Down: 500 * time.Millisecond}})
}

func TestProxyMatchesGroundTruth(t *testing.T) {
	needMariaDB(t)
	profiles := []struct {
		name string
		o    lab.ProxyOptions
	}{
		{"pause under the probe timeout", lab.ProxyOptions{Pause: time.Second, MaxPause: 10 * time.Second}},
		{"pause over the probe timeout", lab.ProxyOptions{Pause: 3 * time.Second, MaxPause: 10 * time.Second}},
		{"connections dropped after the maximum pause", lab.ProxyOptions{Pause: 2500 * time.Millisecond, MaxPause: time.Second}},
	}
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			runLab(t, lab.RunOptions{Scenario: lab.ScenarioProxy, Proxy: p.o})
		})
	}
}
