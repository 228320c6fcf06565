package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockName is the file in the journal directory that a writer locks
// (flock) for its life; it holds the pid, host and start time of the
// holder, for the message a second dbprobe gets.
const LockName = "dbprobe.lock"

// RefusedError is Open refusing a journal directory for what the
// configuration points it at: another dbprobe writes there, or the
// directory or its files are not safe to write (others may write the
// directory, a segment is a symlink). dbprobe exits 2 on it.
type RefusedError struct {
	Dir    string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("journal directory %s: %s", e.Dir, e.Reason)
}

// checkDir refuses a directory others may write to, unless it is sticky
// and ours (like /tmp for its owner) or only group-writable by dbprobe's
// own group: anyone who can write it can plant a segment name or replace a
// segment.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("journal dir: %w", err)
	}
	if !st.IsDir() {
		return &RefusedError{Dir: dir, Reason: "not a directory"}
	}
	perm := st.Mode().Perm()
	if perm&0o022 == 0 {
		return nil
	}
	who := "group"
	if perm&0o002 != 0 {
		who = "world"
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return &RefusedError{Dir: dir, Reason: fmt.Sprintf("is %s-writable (mode %v) and its owner is unknown", who, st.Mode())}
	}
	if st.Mode()&os.ModeSticky != 0 && int(sys.Uid) == os.Geteuid() {
		return nil
	}
	// A group of dbprobe's own, as a volume mounted for it gets one
	// (Kubernetes' fsGroup makes the volume group-writable for the pod's
	// group): only dbprobe's user and group may write there.
	if who == "group" && int(sys.Gid) == os.Getegid() {
		return nil
	}
	return &RefusedError{Dir: dir, Reason: fmt.Sprintf("is %s-writable (mode %v): others could plant or replace journal files; "+
		"remove the write permission (chmod go-w), or make it sticky and owned by this user", who, st.Mode())}
}

// checkSegments refuses segment names that are not plain files (a planted
// symlink would make dbprobe cut and append to its target).
func checkSegments(dir string, segs []uint64) error {
	for _, n := range segs {
		st, err := os.Lstat(filepath.Join(dir, SegmentName(n)))
		if err != nil {
			return fmt.Errorf("journal segment: %w", err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return &RefusedError{Dir: dir, Reason: fmt.Sprintf("%s is a symlink; dbprobe writes only files it created (remove it)", SegmentName(n))}
		}
		if !st.Mode().IsRegular() {
			return &RefusedError{Dir: dir, Reason: fmt.Sprintf("%s is not a regular file (%v)", SegmentName(n), st.Mode().Type())}
		}
	}
	return nil
}

// openSegmentFile opens segment n for reading, never through a symlink.
func openSegmentFile(dir string, n uint64) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, SegmentName(n)), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}

// lockDir takes the directory's lock and writes who holds it. The lock is
// an flock on LockName: the kernel drops it when the holder exits however
// it exits, so a crashed dbprobe never leaves a stale lock behind.
func lockDir(dir string, started time.Time) (*os.File, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o640)
	if errors.Is(err, syscall.ELOOP) {
		return nil, &RefusedError{Dir: dir, Reason: LockName + " is a symlink (remove it)"}
	}
	if err != nil {
		return nil, fmt.Errorf("journal lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal lock: %w", err)
		}
		holder, _ := io.ReadAll(io.LimitReader(f, 512))
		who := strings.TrimSpace(string(bytes.ToValidUTF8(holder, nil)))
		if who == "" {
			who = "a process that has not written its name yet"
		}
		return nil, &RefusedError{Dir: dir, Reason: "in use by another dbprobe (" + who + "); stop it, or give this one its own sinks.journal.dir"}
	}
	host, _ := os.Hostname()
	who := fmt.Sprintf("pid %d on host %s, started %s\n", os.Getpid(), host, started.UTC().Format(time.RFC3339))
	// The flock is the lock; the name only tells a second instance who
	// holds it. A disk too full to take the name must not stop dbprobe,
	// whose journal rides out a full disk in its backlog.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(who), 0)
	}
	return f, nil
}
