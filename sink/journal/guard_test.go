package journal

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSecondWriterIsRefused holds a journal open in a real second process
// and opens the same directory here: the second writer must be refused,
// naming the process that holds it, and must not touch the journal.
func TestSecondWriterIsRefused(t *testing.T) {
	if dir := os.Getenv("DBPROBE_JOURNAL_HOLD_CHILD"); dir != "" {
		w, err := Open(dir, Options{})
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		if err := w.Append(ev(0)); err != nil {
			os.Exit(1)
		}
		_ = w.Sync()
		os.Stdout.WriteString("holding\n")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
		_ = w.Close()
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondWriterIsRefused$")
	cmd.Env = append(os.Environ(), "DBPROBE_JOURNAL_HOLD_CHILD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	w, err := Open(dir, Options{})
	if err == nil {
		w.Append(ev(1))
		w.Close()
		stdin.Close()
		cmd.Wait()
		t.Fatalf("a second writer opened a journal another process is writing (%d events in it now)", len(readAll(t, dir)))
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Errorf("error %v (%T); want a *RefusedError", err, err)
	}
	if pid := strconv.Itoa(cmd.Process.Pid); !strings.Contains(err.Error(), "pid "+pid) {
		t.Errorf("error %q does not name the holder, pid %s", err, pid)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	// Once the holder is gone, the directory is free again.
	w, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after the holder exited: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, dir); len(got) != 1 {
		t.Errorf("%d events in the journal; want the holder's 1", len(got))
	}
}

// TestPlantedSymlinkIsRefused plants a segment name that links elsewhere:
// Open must refuse the directory and leave the link's target untouched.
func TestPlantedSymlinkIsRefused(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	const content = "precious data, no newline at the end"
	if err := os.WriteFile(victim, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, SegmentName(1))); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir, Options{})
	if err == nil {
		w.Append(ev(0))
		w.Close()
	}
	got, rerr := os.ReadFile(victim)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if string(got) != content {
		t.Errorf("the symlink's target was changed: %q", got)
	}
	if err == nil {
		t.Fatal("Open accepted a symlinked segment")
	}
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("error %v; want a *RefusedError naming the symlink", err)
	}
}

// TestUnsafeDirectoryIsRefused: a directory others may write to lets them
// plant files; it is refused unless sticky and owned by this user.
func TestUnsafeDirectoryIsRefused(t *testing.T) {
	ours, other := os.Getegid(), os.Getegid()+4242
	for _, c := range []struct {
		name  string
		mode  os.FileMode
		group int
		ok    bool
	}{
		{"private", 0o750, ours, true},
		{"group writable, another group", 0o770, other, false},
		{"group writable, our group", 0o2770, ours, true},
		{"world writable", 0o777, ours, false},
		{"world writable, sticky, ours", 0o777 | os.ModeSticky, ours, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "j")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, -1, c.group); err != nil {
				t.Skipf("giving the directory group %d needs root: %v", c.group, err)
			}
			if err := os.Chmod(dir, c.mode); err != nil {
				t.Fatal(err)
			}
			w, err := Open(dir, Options{})
			if err == nil {
				w.Close()
			}
			var re *RefusedError
			switch {
			case c.ok && err != nil:
				t.Errorf("Open refused a %v directory: %v", c.mode, err)
			case !c.ok && err == nil:
				t.Errorf("Open accepted a %v directory", c.mode)
			case !c.ok && (!errors.As(err, &re) || !strings.Contains(err.Error(), "writable")):
				t.Errorf("error %v; want a *RefusedError saying what is writable", err)
			}
		})
	}
}
