package probe

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab/mariadb"
)

// TestOutOfDescriptorsIsTheObserversFault: with every file descriptor of
// the process in use (a real EMFILE: the soft RLIMIT_NOFILE lowered to
// what is open, then filled), a probe of a healthy MariaDB cannot even
// create its socket. That says nothing about the database: the probe is
// classed observer_fault, which the detector never counts as downtime,
// not connect_refused or other.
func TestOutOfDescriptorsIsTheObserversFault(t *testing.T) {
	srv := startServer(t, mariadb.Options{})
	te := newTestEnv()
	s := streamsByMode(targetFor(srv, probeUser, probePassword, event.ModeFresh), te)[event.ModeFresh]
	if ev := s.ProbeOnce(context.Background()); ev.DBProbe.Failure != nil {
		t.Fatalf("probe before exhausting descriptors failed: %+v %v", ev.DBProbe.Failure, ev.Error)
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 512
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	release := func() {
		for _, f := range held {
			f.Close()
		}
		held = nil
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	}
	defer release()
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, f)
		if len(held) > int(low.Cur) {
			t.Fatalf("opened %d files under a limit of %d without EMFILE", len(held), low.Cur)
		}
	}
	ev := s.ProbeOnce(context.Background())
	release()
	f := ev.DBProbe.Failure
	if f == nil {
		t.Fatal("probe succeeded with no descriptor left")
	}
	if f.Class != event.ClassObserverFault || !f.ObserverFault() {
		t.Errorf("probe without descriptors: class %s in %s (%v); want %s", f.Class, f.Phase, ev.Error.Message, event.ClassObserverFault)
	}
	if ev.Event.Outcome != event.OutcomeFailure {
		t.Errorf("outcome = %s; want failure (the detector reads the class)", ev.Event.Outcome)
	}
	if ev := s.ProbeOnce(context.Background()); ev.DBProbe.Failure != nil {
		t.Errorf("probe after releasing descriptors failed: %+v %v", ev.DBProbe.Failure, ev.Error)
	}
}
