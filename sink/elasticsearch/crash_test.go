package elasticsearch

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/esfake"
	"github.com/dbprobe/dbprobe/internal/wait"
)

const crashChildEnv = "DBPROBE_ES_SHIPPER_CHILD"

// TestKillMidShipmentThenRestartShipsEveryEventOnce kills a shipping
// process with SIGKILL twice in the middle of shipping, restarts it, and
// checks that Elasticsearch ends up with every event exactly once.
func TestKillMidShipmentThenRestartShipsEveryEventOnce(t *testing.T) {
	if v := os.Getenv(crashChildEnv); v != "" {
		dir, url, _ := strings.Cut(v, "\t")
		sh, err := New(esConfig(t, url, "batch_events: 300"), dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sh.Run(context.Background()) // until killed
		return
	}
	es := newFake(t, esfake.Options{Storage: esfake.StoreIDs})
	es.SetSlow(2 * time.Millisecond) // spread shipping over many requests in flight
	dir := t.TempDir()
	events := probeEvents("obs-a", 0, 12000)
	appendEvents(t, dir, events, 4<<20)

	for _, killAt := range []int{3000, 7000} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillMidShipmentThenRestartShipsEveryEventOnce$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir+"\t"+es.URL)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait.For(t, 30*time.Second, "the child to ship part of the journal", func() bool { return es.Count(testStream) >= killAt })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if n := es.Count(testStream); n >= len(events) {
			t.Fatalf("the child shipped everything (%d) before it was killed; the test proves nothing", n)
		}
	}
	es.SetSlow(0)
	shipJournal(t, esConfig(t, es.URL, "batch_events: 300"), dir, Options{})
	checkExactlyOnce(t, es, events)
	t.Logf("documents refused as already stored after the kills: %d", es.Counts().Conflicts)
}
