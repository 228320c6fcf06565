package mariadb

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// watchdog runs mariadbd ("$@") under a shell that kills it when dbprobe
// goes away. mariadbd cannot rely on a parent-death signal: it drops it when
// it switches user (--user=root included). So the shell holds the read end
// of a pipe whose write end only dbprobe has; when dbprobe exits however it
// exits (a test binary killed on timeout, kill -9), the kernel closes the
// write end, the read sees EOF and mariadbd gets SIGKILL instead of
// holding its port forever. The shell prints mariadbd's pid first, and exits
// with mariadbd's status. $1 is the error log, which also takes whatever
// mariadbd writes to stdout and stderr before it opens the log.
const watchdog = `log=$1; shift
exec 3<&0
"$@" </dev/null 3<&- >>"$log" 2>&1 &
pid=$!
echo "$pid"
{ read -r _ <&3; kill -KILL "$pid" 2>/dev/null; } >/dev/null 2>&1 &
watcher=$!
wait "$pid"
st=$?
kill "$watcher" 2>/dev/null
exit "$st"
`

// process is one run of mariadbd under the watchdog shell.
type process struct {
	cmd  *exec.Cmd
	pid  int // mariadbd's own pid; cmd.Process is the shell, the group leader
	life *os.File
	done chan struct{} // closed once mariadbd (and the shell) exited
	err  error         // how, valid once done is closed
}

// spawn starts mariadbd with args under the watchdog and returns once its pid
// is known. The process group is the shell's own, so a Ctrl-C meant for
// dbprobe does not reach mariadbd, which dbprobe then shuts down in order.
func spawn(mariadbd string, args []string, errLog string) (*process, error) {
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	pidR, pidW, err := os.Pipe()
	if err != nil {
		lifeR.Close()
		lifeW.Close()
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdog, "dbprobe-mariadbd", errLog, mariadbd}, args...)...)
	cmd.Stdin = lifeR
	cmd.Stdout = pidW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	// The child has its copies; ours would keep the pipes open.
	lifeR.Close()
	pidW.Close()
	if err != nil {
		lifeW.Close()
		pidR.Close()
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	p := &process{cmd: cmd, life: lifeW, done: make(chan struct{})}
	line, readErr := bufio.NewReader(pidR).ReadString('\n')
	pidR.Close()
	go func() {
		p.err = cmd.Wait()
		p.life.Close()
		close(p.done)
	}()
	p.pid, err = strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return nil, fmt.Errorf("start mariadbd: no pid from the watchdog shell (%q, %v): %w", line, readErr, p.err)
	}
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to mariadbd itself (not the shell, which must stay able to
// act on its pipe while mariadbd is frozen).
func (p *process) signal(sig syscall.Signal) error {
	return syscall.Kill(p.pid, sig)
}

// awaitStopped waits until the process is (or is no longer) stopped by a
// signal, as /proc shows it. Where there is no /proc it returns at once.
func (p *process) awaitStopped(stopped bool) error {
	path := fmt.Sprintf("/proc/%d/stat", p.pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // no procfs: nothing to wait on
		}
		// The state follows the parenthesised command name.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return nil
		}
		if state := b[i+2]; (state == 'T' || state == 't') == stopped {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d did not change state", p.pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// kill sends SIGKILL to the whole group and waits for it.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	<-p.done
}
