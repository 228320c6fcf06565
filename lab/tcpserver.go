package lab

import (
	"errors"
	"log/slog"
	"net"
	"sync"
)

// tcpServer accepts connections for the forwarder and the proxy, runs a
// handler for each, and keeps track of every connection it and the
// handlers open, so that close cuts them all and waits for the handlers.
type tcpServer struct {
	ln  net.Listener
	log *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup
}

// listenTCP listens on addr; serve then accepts.
func listenTCP(addr string, log *slog.Logger) (*tcpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &tcpServer{ln: ln, log: log, conns: map[net.Conn]struct{}{}}, nil
}

// serve runs handle for each connection, in a goroutine of its own; the
// connection is tracked already.
func (t *tcpServer) serve(name string, handle func(net.Conn)) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			c, err := t.ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.log.Error(name+" stopped accepting", "err", err)
				}
				return
			}
			if !t.goTracked(c, func() { handle(c) }) {
				return
			}
		}
	}()
}

func (t *tcpServer) port() int { return t.ln.Addr().(*net.TCPAddr).Port }

// goTracked tracks c and runs fn in a goroutine close waits for; once the
// server is closed it closes c instead and returns false.
func (t *tcpServer) goTracked(c net.Conn, fn func()) bool {
	if !t.register(c, 1) {
		return false
	}
	go func() {
		defer t.wg.Done()
		defer t.forget(c)
		fn()
	}()
	return true
}

// track registers c, opened by a handler, so that close cuts it; once the
// server is closed it closes c instead and returns false.
func (t *tcpServer) track(c net.Conn) bool { return t.register(c, 0) }

// register tracks c and adds goroutines to the ones close waits for, both
// under the lock close takes, so none starts after close began.
func (t *tcpServer) register(c net.Conn, goroutines int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	t.wg.Add(goroutines)
	return true
}

func (t *tcpServer) forget(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
}

// close stops accepting, cuts every connection and waits for the handlers.
func (t *tcpServer) close() {
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.ln.Close()
	t.wg.Wait()
}
