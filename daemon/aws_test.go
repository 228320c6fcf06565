package daemon

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/awsrds/rdsfake"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/syncbuf"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/report"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// TestAWSEventsJournaledAndReported runs dbprobe with aws_events against a
// local fake of the RDS API (AWS_ENDPOINT_URL_RDS, as a VPC endpoint would
// be set): AWS's events reach the journal as aws_event events and the
// report's aws_events, while the target itself is down, which they do not
// affect.
func TestAWSEventsJournaledAndReported(t *testing.T) {
	const key = "AKIAIOSFODNN7EXAMPLE"
	fake := rdsfake.New(t, key)
	now := time.Now().UTC()
	fake.Add("db-cluster", "orders", now.Add(-time.Minute).Format(time.RFC3339), "Started cross AZ failover to DB instance: orders-2", "failover")
	fake.Add("db-cluster", "orders", now.Add(-30*time.Second).Format(time.RFC3339), "Completed failover to DB instance: orders-2", "failover")
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_ENDPOINT_URL_RDS", fake.URL)
	var logBuf syncbuf.Buffer
	run := startWith(t, `
run_id: aws
interval: 100ms
timeout: 200ms
targets:
  - name: orders
    host: 127.0.0.1
    port: 1
    user: probe
    aws: {region: eu-west-1}
    aws_events: {cluster: orders, interval: 2s}
http: {listen: ""}
sinks: {journal: {dir: `+dir+`}}
`, Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	journaled := func() (n int) {
		_ = journal.Scan(run.d.JournalDir(), func(e *event.Event) error {
			if e.Event.Action == event.ActionAWSEvent {
				n++
			}
			return nil
		}, nil)
		return n
	}
	wait.For(t, time.Minute, "two aws_event events in the journal", func() bool { return journaled() >= 2 })
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), "Started cross AZ failover to DB instance: orders-2") {
		t.Errorf("the log does not show AWS's event:\n%s", logBuf.String())
	}
	if n := journaled(); n != 2 {
		t.Errorf("%d aws_event events journaled, want each of the 2 once", n)
	}
	b, err := os.ReadFile(filepath.Join(run.d.JournalDir(), "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 1 || len(rep.Targets[0].AWSEvents) != 2 ||
		rep.Targets[0].AWSEvents[0].Message != "Started cross AZ failover to DB instance: orders-2" ||
		rep.Targets[0].AWSEvents[1].Source != "db-cluster orders" {
		t.Errorf("report targets %+v", rep.Targets)
	}
}
