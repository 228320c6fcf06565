package main

import (
	"context"
	"strings"
	"testing"

	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

// TestCheckEscapesServerText: a server decides the text of its error
// messages. One that answers the write probe with ANSI escapes and newlines
// must not be able to clear the terminal, recolour it or forge a line of
// check's output ("db/fresh: ok"); check prints them escaped.
func TestCheckEscapesServerText(t *testing.T) {
	srv := probeServer(t)
	forged := `CONCAT('boom', CHAR(27), '[2J', CHAR(10), 'db/fresh: ok in 1.0 ms', CHAR(13), CHAR(27), '[32mfine')`
	body := " ON dbprobe.dbprobe_heartbeat FOR EACH ROW BEGIN DECLARE msg VARCHAR(128) DEFAULT " + forged +
		"; SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = msg; END"
	mariadbtest.Exec(t, srv, "CREATE TRIGGER dbprobe.rogue_insert BEFORE INSERT"+body, "CREATE TRIGGER dbprobe.rogue_update BEFORE UPDATE"+body)
	cfg := writeConfig(t, `
targets:
  - name: db
    dsn: "probe:${PW}@tcp(`+srv.Addr()+`)/dbprobe"
    write: {table: dbprobe_heartbeat}
sinks: {journal: {dir: `+t.TempDir()+`}}
`)
	te := newEnv(map[string]string{"PW": secret})
	if code := mainExit(context.Background(), []string{"check", "--config", cfg}, te.env); code != 1 {
		t.Errorf("check exit code = %d, want 1 (the write fails)\n%s", code, te.stdout.String())
	}
	out := te.stdout.String()
	if !strings.Contains(out, "boom") {
		t.Fatalf("check output lacks the server's message:\n%s", out)
	}
	if strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("check output carries raw escape or carriage-return characters:\n%q", out)
	}
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "db/fresh: ok") {
			t.Errorf("the server forged a line of check's output: %q", line)
		}
	}
	// MariaDB itself shows ESC as \001B; newline and carriage return it
	// passes through raw (safetext's tests cover a raw ESC).
	if !strings.Contains(out, `boom\001B[2J\ndb/fresh: ok in 1.0 ms\r\001B[32mfine`) {
		t.Errorf("check output does not show the message escaped:\n%s", out)
	}
}
