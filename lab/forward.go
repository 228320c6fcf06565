package lab

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// forwarder stands in for DNS where blue and green cannot have addresses of
// their own: it routes each new connection to the server the endpoint
// currently names and leaves established connections where they are, as a
// DNS change does.
type forwarder struct {
	ln  net.Listener
	log *slog.Logger

	mu     sync.Mutex
	route  string
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup
}

func startForwarder(addr, route string, log *slog.Logger) (*forwarder, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, log: log, route: route, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// setRoute sends new connections to addr from now on.
func (f *forwarder) setRoute(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.route = addr
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.log.Error("lab forwarder stopped accepting", "err", err)
			}
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			c.Close()
			return
		}
		route := f.route
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go f.pipe(c, route)
	}
}

// pipe joins client c to a new connection to route until either side ends.
func (f *forwarder) pipe(c net.Conn, route string) {
	defer f.wg.Done()
	defer f.forget(c)
	defer c.Close()
	s, err := net.DialTimeout("tcp", route, 5*time.Second)
	if err != nil {
		return // the client sees its connection closed, as with a refused dial
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		s.Close()
		return
	}
	f.conns[s] = struct{}{}
	f.mu.Unlock()
	defer f.forget(s)
	defer s.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Closing both ends releases the other copy.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go cp(s, c)
	go cp(c, s)
	<-done
	<-done
}

func (f *forwarder) forget(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

// close stops accepting, cuts every connection and waits for the pipes.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}
