// Command genjournal writes a realistic synthetic journal for benchmarking
// `dbprobe report`: a fresh and a pooled stream of one target probing every
// 100 ms, with a Blue/Green switchover (read-only, refused connections, a
// cutover, a DNS change and a stale pooled connection), a later outage and
// a gap, written through the real journal writer.
//
//	go run ./report/internal/genjournal -dir /tmp/j -events 1000000
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/journal"
)

func main() {
	dir := flag.String("dir", "", "journal directory to create (must not exist)")
	events := flag.Int("events", 1_000_000, "number of probe events to write (two streams)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "genjournal: -dir is required")
		os.Exit(2)
	}
	if _, err := os.Stat(*dir); err == nil {
		fmt.Fprintf(os.Stderr, "genjournal: %s exists; refusing to add to it\n", *dir)
		os.Exit(2)
	}
	if err := run(*dir, *events/2); err != nil {
		fmt.Fprintf(os.Stderr, "genjournal: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, ticks int) error {
	w, err := journal.Open(dir, journal.Options{SyncInterval: time.Minute})
	if err != nil {
		return err
	}
	const runID = "bench-2025-03-01"
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	iv := 100 * time.Millisecond
	blue := detectortest.NewServer("uuid:3e11fa47-71ca-11e1-9e33-c80aa9429562", "10.0.0.1:3306")
	green := detectortest.NewServer("uuid:8a94f357-aab4-11df-86ab-c80aa9429562", "10.0.0.2:3306")
	blue.Hostname, green.Hostname = "orders-blue", "orders-green"
	roBlue := detectortest.ReadOnly(blue)

	fresh := detectortest.NewStream(runID, "probe-eu-1", "orders", "fresh", start, iv)
	fresh.Writes, fresh.Jitter = true, 0.4
	fresh.Domain = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
	pooled := detectortest.NewStream(runID, "probe-eu-1", "orders", "pooled", start, iv)
	pooled.Writes, pooled.Jitter = true, 0.3
	fresh.Latency(3).Server(blue).DNS("10.0.0.1")
	pooled.Latency(0.8).Server(blue)

	switchAt := ticks * 2 / 5
	outageAt := ticks * 3 / 5
	gapAt := ticks * 4 / 5
	var phases []*event.Event
	// steps script both streams up to tick n in chunks, writing as they go,
	// so memory stays flat however many events are asked for.
	flush := func() error {
		for _, e := range detectortest.ByCompletion(fresh.Take(), pooled.Take(), phases) {
			if err := w.Append(e); err != nil {
				return err
			}
		}
		phases = nil
		return nil
	}
	upTo := func(s *detectortest.Stream, n int) {
		for int(s.Len()) < n {
			s.Up(min(10_000, n-int(s.Len())))
		}
	}
	steady := func(n int) error {
		for int(fresh.Len()) < n {
			next := min(int(fresh.Len())+10_000, n)
			upTo(fresh, next)
			upTo(pooled, next)
			if err := flush(); err != nil {
				return err
			}
		}
		return nil
	}
	phase := func(i int, p string) {
		phases = append(phases, detectortest.Phase(runID, "probe-eu-1", "orders", fresh.Scheduled(int64(i)), p))
	}
	phase(0, "CREATED")
	if err := steady(switchAt); err != nil {
		return err
	}
	// The switchover, as detectortest.Switchover scripts it.
	phase(switchAt-30, "PREPARATION")
	phase(switchAt, "IN_PROGRESS")
	phase(switchAt+25, "POST")
	phase(switchAt+150, "COMPLETED")
	fresh.Server(roBlue).WriteFail(5, "read_only").
		Latency(1).Down(4, "offline").Latency(1200).Down(2, "timeout").Latency(1).Down(14, "offline").
		Latency(3).WriteFail(120, "read_only").
		Server(green).DNS("10.0.0.2")
	pooled.Server(roBlue).WriteFail(5, "read_only").Latency(1).Down(1, "conn_lost").
		Latency(0.8).WriteFail(int(fresh.Len())-int(pooled.Len())+400, "read_only").Latency(1).Down(1, "conn_lost").
		Latency(0.8).Server(green)
	if err := steady(outageAt); err != nil {
		return err
	}
	fresh.Latency(1).Down(37, "connect_refused").Latency(3)
	pooled.Latency(1).Down(1, "conn_lost").Latency(2000).Down(2, "timeout").Latency(1).Down(34, "connect_refused").Latency(0.8)
	if err := steady(gapAt); err != nil {
		return err
	}
	fresh.Gap(50)
	pooled.Gap(50)
	if err := steady(ticks); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	return w.Close()
}
