package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/sink/journal"
)

// printer shows every event it observes on stdout, as "seq N": what the
// child daemon has shown to the outside world.
type printer struct{}

func (printer) Observe(e *event.Event) { fmt.Printf("seq %d\n", e.Event.Sequence) }

// TestKillLosesNothingShown kills a running daemon with SIGKILL and checks
// that every event it had shown (to an observer: metrics, webhooks and the
// log see events at the same moment) is in the journal, although the
// journal never fsynced (sync_interval 1m): lines must reach the kernel
// before anything shows them, not at the next sync tick.
func TestKillLosesNothingShown(t *testing.T) {
	if dir := os.Getenv("DBPROBE_DAEMON_KILL_CHILD"); dir != "" {
		killChild(dir, os.Getenv("DBPROBE_DAEMON_KILL_ADDR"))
		return
	}
	// A port nobody listens on: every probe fails at once, so the
	// streams produce events fast without a database.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillLosesNothingShown$")
	cmd.Env = append(os.Environ(), "DBPROBE_DAEMON_KILL_CHILD="+dir, "DBPROBE_DAEMON_KILL_ADDR="+addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	shown := map[uint64]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "seq ")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		shown[seq] = true
		if len(shown) >= 300 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true // read on: lines already printed were shown too
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("the child showed only %d events before it ended", len(shown))
	}
	journaled := map[uint64]bool{}
	if err := journal.Scan(dir, func(e *event.Event) error {
		journaled[e.Event.Sequence] = true
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	var lost []uint64
	for seq := range shown {
		if !journaled[seq] {
			lost = append(lost, seq)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("SIGKILL lost %d of the %d events the daemon had shown (journal holds %d)", len(lost), len(shown), len(journaled))
	}
	t.Logf("%d events shown before SIGKILL, all %d in the journal", len(shown), len(journaled))
}

func killChild(dir, addr string) {
	var targets strings.Builder
	for i := range 10 {
		fmt.Fprintf(&targets, "  - {name: db%d, dsn: \"probe:pw@tcp(%s)/x\", modes: [fresh]}\n", i, addr)
	}
	c, err := config.Parse([]byte(`
interval: 100ms
timeout: 1s
targets:
`+targets.String()+`
sinks: {journal: {dir: `+dir+`, sync_interval: 1m}}
http: {listen: ""}
`), func(string) string { return "" })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d, err := New(c, Options{Observers: []EventObserver{printer{}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = d.Run(context.Background()) // until killed
	os.Exit(1)
}
