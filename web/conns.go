package web

import (
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Connection limits. Every connection costs dbprobe a file descriptor, and
// so does every probe: connections beyond the cap wait in the kernel's
// accept queue, where they cost none, so that a flood of clients can never
// take the descriptors probing needs (it did: 20,000 keep-alive connections
// made probes of a healthy server fail with EMFILE).
const (
	// minConns and maxConns bound DefaultMaxConns.
	minConns = 16
	maxConns = 1024
	// connShare is the part of RLIMIT_NOFILE the server may use: 1/4.
	// The rest stays for probes, the journal, Elasticsearch and webhooks.
	connShare = 4
)

// DefaultMaxConns is the connection cap when Options.MaxConns is 0: a
// quarter of the soft RLIMIT_NOFILE, between 16 and 1024.
func DefaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return minConns
	}
	return int(min(max(rl.Cur/connShare, minConns), maxConns))
}

// Timeouts of the server's connections. Requests are small GETs; answers
// may wait for a shared render (renderTimeout) and then be large.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = renderTimeout + time.Minute
	idleTimeout       = time.Minute
)

// limitListener caps the connections open at once. When the cap is
// reached it closes the connection that has been idle longest (a
// keep-alive connection between requests, or one that has not sent a
// request yet) to make room, so that a flood of idle connections cannot
// lock out a health check; when none is idle, Accept waits for a
// connection to end.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	closed chan struct{}
	kick   chan struct{} // a connection went idle
	once   sync.Once
	// first runs in the first Accept, in the goroutine that called Serve,
	// before any connection is served.
	first     func()
	firstOnce sync.Once

	mu   sync.Mutex
	idle map[net.Conn]idleConn // connections evictable
}

// idleConn is a connection waiting for a request: since when, and whether
// it has yet to send its first.
type idleConn struct {
	since time.Time
	fresh bool
}

// silentAfter is how long a new connection may stay silent before it is
// evictable: one that sends its request at once is never cut before it.
const silentAfter = time.Second

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), closed: make(chan struct{}), kick: make(chan struct{}, 1), idle: map[net.Conn]idleConn{}}
}

// Accept waits for a free slot, making one by closing the longest idle
// connection if need be, then accepts.
func (l *limitListener) Accept() (net.Conn, error) {
	l.firstOnce.Do(func() {
		if l.first != nil {
			l.first()
		}
	})
	for {
		select {
		case l.slots <- struct{}{}:
		default:
			if l.evict() {
				continue
			}
			// Wait for a slot, or for a connection to become evictable:
			// one going idle kicks, a silent one is waited for.
			t := time.NewTimer(silentAfter / 4)
			select {
			case l.slots <- struct{}{}:
				t.Stop()
			case <-l.kick:
				t.Stop()
				continue
			case <-t.C:
				continue
			case <-l.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
	}
}

// evict closes the keep-alive connection idle longest or, when there is
// none, the new connection silent longest (for silentAfter at least); it
// reports whether there was one. Closing it releases its slot at once.
func (l *limitListener) evict() bool {
	l.mu.Lock()
	var oldest net.Conn
	var best idleConn
	now := time.Now()
	for c, ic := range l.idle {
		if ic.fresh && now.Sub(ic.since) < silentAfter {
			continue
		}
		// Keep-alive connections go first, then the longest idle.
		if oldest == nil || (best.fresh && !ic.fresh) || (best.fresh == ic.fresh && ic.since.Before(best.since)) {
			oldest, best = c, ic
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.Close()
	return true
}

// connState is the server's ConnState hook: it keeps the set of idle
// connections up to date.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateNew, http.StateIdle:
		l.idle[c] = idleConn{since: time.Now(), fresh: s == http.StateNew}
		if s == http.StateIdle {
			select {
			case l.kick <- struct{}{}:
			default:
			}
		}
	default:
		delete(l.idle, c)
	}
}

// open is the number of connections open now.
func (l *limitListener) open() int { return len(l.slots) }

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back when closed, once.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// closeRefused makes the server close a connection after refusing a
// request (401 without valid credentials, 429 rate-limited): a client
// that is not allowed in keeps no descriptor of dbprobe's.
func closeRefused(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&refusalWriter{ResponseWriter: w}, r)
	})
}

type refusalWriter struct{ http.ResponseWriter }

func (w *refusalWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized || code == http.StatusTooManyRequests {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush and Unwrap keep what the wrapped writer can do reachable.
func (w *refusalWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
