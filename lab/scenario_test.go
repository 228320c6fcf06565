package lab_test

import (
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/lab"
)

// TestScenariosMatchGroundTruth runs the failover, reboot and proxy
// scenarios end to end at 100 ms and holds every boundary dbprobe reports
// to one interval plus lab.DefaultSlack of when the lab made it happen.
func TestScenariosMatchGroundTruth(t *testing.T) {
	needMariaDB(t)
	profiles := []struct {
		name string
		run  lab.RunOptions
	}{
		{"failover", lab.RunOptions{Scenario: lab.ScenarioFailover,
			Failover: lab.FailoverOptions{PromoteDelay: 500 * time.Millisecond, DNSDelay: time.Second}}},
		{"failover, the writer hangs", lab.RunOptions{Scenario: lab.ScenarioFailover,
			Failover: lab.FailoverOptions{PromoteDelay: 500 * time.Millisecond, DNSDelay: time.Second, Hang: true}}},
		{"reboot", lab.RunOptions{Scenario: lab.ScenarioReboot, Reboot: lab.RebootOptions{Down: 500 * time.Millisecond}}},
		{"proxy, pause under the probe timeout", lab.RunOptions{Scenario: lab.ScenarioProxy,
			Proxy: lab.ProxyOptions{Pause: time.Second, MaxPause: 10 * time.Second}}},
		{"proxy, pause over the probe timeout", lab.RunOptions{Scenario: lab.ScenarioProxy,
			Proxy: lab.ProxyOptions{Pause: 3 * time.Second, MaxPause: 10 * time.Second}}},
		{"proxy, connections dropped after the maximum pause", lab.RunOptions{Scenario: lab.ScenarioProxy,
			Proxy: lab.ProxyOptions{Pause: 2500 * time.Millisecond, MaxPause: time.Second}}},
	}
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			runLab(t, p.run)
		})
	}
}
