package daemon

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/internal/syncbuf"
	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

// TestWrongPasswordWarnsLoudly: a target whose password is wrong fails
// from its first probe; after a few probes dbprobe says so at error level,
// with the class and what to check, while it runs, and the live board
// carries the same warning for the terminal view and the status page.
func TestWrongPasswordWarnsLoudly(t *testing.T) {
	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.CreateUser(t, srv, "probe", "right", "SELECT ON *.*")
	c, err := config.Parse([]byte(`
interval: 50ms
targets:
  - name: db
    dsn: "probe:wrong@tcp(`+srv.Addr()+`)/"
sinks: {journal: {dir: `+t.TempDir()+`}}
http: {listen: ""}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	d, err := New(c, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := runDaemon(t, d)
	defer func() {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}()
	wait.For(t, time.Minute, "the warning", func() bool { return strings.Contains(logs.String(), "NOT ANSWERING") })
	line := logs.String()[strings.Index(logs.String(), "level=ERROR msg=\"NOT ANSWERING"):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{"target=db", "mode=fresh", "class=auth", "credentials", "grants", "Access denied"} {
		if !strings.Contains(line, want) {
			t.Errorf("warning %q lacks %q", line, want)
		}
	}
	if strings.Contains(logs.String(), "wrong") {
		t.Error("the password reached the log")
	}
	tg := d.Board().Snapshot()[0]
	if !tg.Streams[0].NeverUp || !strings.Contains(tg.Verdict(time.Now()), "not answering since the first probe") {
		t.Errorf("board: never up %v, verdict %q", tg.Streams[0].NeverUp, tg.Verdict(time.Now()))
	}
}
