// Package mariadb starts and stops real mariadbd servers on loopback
// addresses, for dbprobe's tests and for `dbprobe lab`.
//
// Each server lives in a directory of its own: its datadir, error log, pid
// file and (when the path is short enough) its unix socket. The datadir is a
// copy of a template built once per mariadbd binary with mariadb-install-db
// and cached in the system temp dir, so starting a server costs a file copy
// and the server's own start-up (well under a second), not a bootstrap.
//
// Servers run with --no-defaults, so no /etc/mysql configuration leaks in,
// and are tuned for speed rather than durability across power loss: a
// committed transaction survives a SIGKILL of mariadbd (Kill), not a crash of
// the machine.
package mariadb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options configure a server. The zero value starts a server on 127.0.0.1 on
// a free port.
type Options struct {
	// Host is the loopback address mariadbd binds, e.g. "127.0.0.2" (Linux
	// routes all of 127.0.0.0/8 to lo, so several servers can share a port
	// on distinct addresses). Default "127.0.0.1".
	Host string
	// Port to listen on; 0 picks a free one.
	Port int
	// ServerID is @@server_id; 0 derives one from Host and Port so two
	// servers of a replication pair differ without the caller thinking
	// about it.
	ServerID uint32
	// Args are extra mariadbd options, appended after dbprobe's defaults
	// (so they win), e.g. "--log-bin", "--binlog-format=ROW",
	// "--read-only=1", "--gtid-strict-mode=1".
	Args []string
	// Logger receives start/stop records; nil discards them.
	Logger *slog.Logger
	// Binaries overrides where mariadbd and mariadb-install-db are; the
	// zero value finds them with FindBinaries.
	Binaries Binaries
}

// Server is one running (or stopped) mariadbd. Its methods are safe for
// concurrent use.
type Server struct {
	dir      string
	datadir  string
	errLog   string
	socket   string
	sockDir  string // a short directory made for the socket, removed by Close; "" if the socket lives in dir
	host     string
	port     int
	serverID uint32
	bin      Binaries
	args     []string
	log      *slog.Logger
	root     *sql.DB

	mu     sync.Mutex
	proc   *process // nil while stopped
	closed bool
}

// Start prepares dir (created if missing; it must not already hold a
// server) and starts mariadbd in it. It returns once root can run queries
// over the unix socket. ctx bounds the start only, not the server's life:
// call Close to stop it. If mariadbd fails to start, the error includes the
// tail of its error log (dir/mariadbd.err).
func Start(ctx context.Context, dir string, opts Options) (*Server, error) {
	bin := opts.Binaries
	if bin.Mariadbd == "" || bin.InstallDB == "" {
		found, err := FindBinaries()
		if err != nil {
			return nil, err
		}
		if bin.Mariadbd == "" {
			bin.Mariadbd = found.Mariadbd
		}
		if bin.InstallDB == "" {
			bin.InstallDB = found.InstallDB
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	s := &Server{
		dir:     dir,
		datadir: filepath.Join(dir, "data"),
		errLog:  filepath.Join(dir, "mariadbd.err"),
		host:    opts.Host,
		port:    opts.Port,
		bin:     bin,
		log:     opts.Logger,
	}
	if s.host == "" {
		s.host = "127.0.0.1"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	if _, err := os.Stat(s.datadir); err == nil {
		return nil, fmt.Errorf("start mariadbd: %s already holds a datadir", dir)
	}
	s.socket = filepath.Join(dir, "mariadbd.sock")
	// sun_path holds 108 bytes; test temp dirs named after long test names
	// overflow it.
	if len(s.socket) > 100 {
		s.sockDir, err = os.MkdirTemp("", "dbprobe-sock-")
		if err != nil {
			return nil, fmt.Errorf("start mariadbd: %w", err)
		}
		s.socket = filepath.Join(s.sockDir, "mariadbd.sock")
	}
	tmpl, err := template(ctx, bin)
	if err != nil {
		s.removeSockDir()
		return nil, err
	}
	// A private tmpdir: the default /tmp is shared with every other
	// server, and temporary table names can collide there.
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		s.removeSockDir()
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	if err := copyTree(tmpl, s.datadir); err != nil {
		s.removeSockDir()
		return nil, fmt.Errorf("copy mariadb template %s to %s: %w", tmpl, s.datadir, err)
	}
	conn, err := mysql.NewConnector(s.rootConfig())
	if err != nil {
		s.removeSockDir()
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	s.root = sql.OpenDB(conn)
	s.root.SetMaxIdleConns(2)
	s.root.SetConnMaxIdleTime(time.Minute)

	// A port picked here may be taken by someone else before mariadbd binds
	// it; pick again in that case.
	pick := s.port == 0
	for attempt := 0; ; attempt++ {
		if pick {
			if s.port, err = FreePort(s.host); err != nil {
				s.release()
				return nil, err
			}
		}
		s.serverID = opts.ServerID
		if s.serverID == 0 {
			s.serverID = deriveServerID(s.host, s.port)
		}
		s.args = s.buildArgs(opts.Args)
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if !pick || attempt == 2 || !errors.Is(err, ErrPortInUse) {
			s.release()
			return nil, err
		}
		s.log.Info("mariadbd port taken, picking another", "port", s.port)
	}
}

func (s *Server) buildArgs(extra []string) []string {
	args := []string{
		"--no-defaults",
		// Binary and relay logs (with --log-bin, on a replica) get stable
		// names instead of the hostname's. It must come before the other
		// paths, which it would otherwise rename.
		"--log-basename=mariadbd",
		"--datadir=" + s.datadir,
		"--tmpdir=" + filepath.Join(s.dir, "tmp"),
		"--socket=" + s.socket,
		"--pid-file=" + filepath.Join(s.dir, "mariadbd.pid"),
		"--log-error=" + s.errLog,
		"--bind-address=" + s.host,
		"--port=" + strconv.Itoa(s.port),
		"--server-id=" + strconv.FormatUint(uint64(s.serverID), 10),
		"--skip-name-resolve",
		"--max-connections=500",
		"--performance-schema=OFF",
		"--innodb-temp-data-file-path=ibtmp1:1M:autoextend",
		"--innodb-flush-log-at-trx-commit=2",
		"--innodb-doublewrite=0",
	}
	args = append(args, installFlags...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return append(args, extra...)
}

// deriveServerID maps host:port to a stable id in [1, 2^31).
func deriveServerID(host string, port int) uint32 {
	sum := sha256.Sum256([]byte(net.JoinHostPort(host, strconv.Itoa(port))))
	return binary.BigEndian.Uint32(sum[:4])%(1<<31-1) + 1
}

// ErrPortInUse is wrapped by the error of Start and Restart when mariadbd
// could not bind its port (Start with Port 0 picks another by itself).
var ErrPortInUse = errors.New("port in use")

// start runs mariadbd and waits until root can ping it. The caller holds mu
// or owns s exclusively.
func (s *Server) start(ctx context.Context) error {
	logStart := fileSize(s.errLog)
	p, err := spawn(s.bin.Mariadbd, s.args, s.errLog)
	if err != nil {
		return err
	}
	s.proc = p
	begin := time.Now()
	if err := s.waitReady(ctx, p); err != nil {
		s.killProc()
		tail := s.logTail(logStart)
		if strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", ErrPortInUse, err)
		}
		return fmt.Errorf("mariadbd in %s on %s did not become ready (error log %s ends:\n%s\n): %w", s.dir, s.Addr(), s.errLog, tail, err)
	}
	s.log.Info("mariadbd ready", "addr", s.Addr(), "dir", s.dir, "pid", p.pid, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

func (s *Server) waitReady(ctx context.Context, p *process) error {
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.root.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("mariadbd exited: %w", p.err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for mariadbd (last ping: %v): %w", err, ctx.Err())
		case <-tick.C:
		}
	}
}

// Dir is the directory the server lives in; its error log is
// Dir()/mariadbd.err.
func (s *Server) Dir() string { return s.dir }

// ErrorLog is the path of mariadbd's error log.
func (s *Server) ErrorLog() string { return s.errLog }

// Socket is the path of the unix socket root connects over.
func (s *Server) Socket() string { return s.socket }

// Host is the address mariadbd binds.
func (s *Server) Host() string { return s.host }

// Port is the TCP port mariadbd listens on; it stays the same across
// Restart.
func (s *Server) Port() int { return s.port }

// Addr is "host:port" for TCP clients.
func (s *Server) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// ServerID is the server's @@server_id.
func (s *Server) ServerID() uint32 { return s.serverID }

// Root is a connection pool for root over the unix socket, for admin work.
// It stays valid across Stop and Restart (queries fail while the server is
// down) and is closed by Close.
func (s *Server) Root() *sql.DB { return s.root }

// Config is a go-sql-driver configuration for user over TCP to Addr, for
// the caller to adjust (timeouts, DBName) and pass to mysql.NewConnector or
// FormatDSN.
func (s *Server) Config(user, password string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = password
	cfg.Net = "tcp"
	cfg.Addr = s.Addr()
	cfg.Logger = &mysql.NopLogger{}
	return cfg
}

func (s *Server) rootConfig() *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = s.socket
	cfg.Timeout = 5 * time.Second
	// The driver logs connections dropped by a server that is starting or
	// being stopped on purpose; those are no news here.
	cfg.Logger = &mysql.NopLogger{}
	return cfg
}

// Running reports whether mariadbd is running (frozen counts as running).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}

// stopTimeout bounds a clean shutdown before Stop falls back to SIGKILL.
const stopTimeout = 30 * time.Second

// Stop shuts mariadbd down cleanly (SIGTERM, waiting for it to exit; SIGKILL
// after 30 s). A frozen server is thawed first. Stopping a stopped server is
// a no-op. Restart starts it again.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if p.exited() {
		return nil
	}
	pid := p.pid
	// SIGTERM stays pending on a stopped process.
	_ = p.signal(syscall.SIGCONT)
	if err := p.signal(syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop mariadbd %d: %w", pid, err)
	}
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		s.log.Info("mariadbd stopped", "addr", s.Addr())
		return nil
	case <-t.C:
	}
	p.kill()
	return fmt.Errorf("mariadbd %d in %s did not shut down within %v and was killed (see %s)", pid, s.dir, stopTimeout, s.errLog)
}

// Restart stops the server if it runs and starts it again on the same
// datadir, address and port, returning once root can ping it.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("restart mariadbd: server closed")
	}
	if err := s.stopLocked(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Kill sends SIGKILL to mariadbd and waits for it to die, as a crash would.
// Restart brings it back (through InnoDB crash recovery).
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return errors.New("kill mariadbd: not running")
	}
	s.killProc()
	s.log.Info("mariadbd killed", "addr", s.Addr())
	return nil
}

// killProc kills the running process, if any, and waits for it.
func (s *Server) killProc() {
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	p.kill()
}

// Freeze stops mariadbd with SIGSTOP: its sockets stay open and the kernel
// still completes TCP handshakes into the listen backlog, but nothing
// answers, like a hung server. Thaw resumes it.
func (s *Server) Freeze() error { return s.signal("freeze", syscall.SIGSTOP) }

// Thaw resumes a frozen mariadbd with SIGCONT.
func (s *Server) Thaw() error { return s.signal("thaw", syscall.SIGCONT) }

func (s *Server) signal(what string, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return fmt.Errorf("%s mariadbd: not running", what)
	}
	if err := s.proc.signal(sig); err != nil {
		return fmt.Errorf("%s mariadbd: %w", what, err)
	}
	// Signal delivery is asynchronous: a query sent right after kill()
	// could still be served. Wait until the kernel shows the new state.
	if err := s.proc.awaitStopped(sig == syscall.SIGSTOP); err != nil {
		return fmt.Errorf("%s mariadbd: %w", what, err)
	}
	s.log.Info("mariadbd "+what, "addr", s.Addr())
	return nil
}

// Close stops the server (cleanly, see Stop) and releases the root pool and
// any socket directory. The server's directory is left for inspection.
// Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.stopLocked()
	s.release()
	return err
}

func (s *Server) release() {
	if s.root != nil {
		s.root.Close()
	}
	s.removeSockDir()
}

func (s *Server) removeSockDir() {
	if s.sockDir != "" {
		os.RemoveAll(s.sockDir)
	}
}

// LogTail returns up to the last n lines of the error log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		return fmt.Sprintf("(no error log: %v)", err)
	}
	return lastLines(string(b), n)
}

// logTail returns the last lines written to the error log after offset.
func (s *Server) logTail(offset int64) string {
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		return fmt.Sprintf("(no error log: %v)", err)
	}
	if offset <= int64(len(b)) {
		b = b[offset:]
	}
	return lastLines(string(b), 20)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// FreePort returns a TCP port that is free on every one of hosts at the time
// of the call, so several servers can listen on the same port on distinct
// loopback addresses.
func FreePort(hosts ...string) (int, error) {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"}
	}
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			return 0, fmt.Errorf("find a free port on %s: %w", hosts[0], err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		for _, h := range hosts[1:] {
			if !PortFree(h, port) {
				ok = false
				break
			}
		}
		l.Close()
		if ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free on all of %s", strings.Join(hosts, ", "))
}

// PortFree reports whether a TCP listener could bind host:port now.
func PortFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
