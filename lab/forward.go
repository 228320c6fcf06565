package lab

import (
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
	*tcpServer

	mu    sync.Mutex
	route string
}

func startForwarder(addr, route string, log *slog.Logger) (*forwarder, error) {
	t, err := listenTCP(addr, log)
	if err != nil {
		return nil, err
	}
	f := &forwarder{tcpServer: t, route: route}
	t.serve("lab forwarder", func(c net.Conn) {
		f.mu.Lock()
		route := f.route
		f.mu.Unlock()
		f.pipe(c, route)
	})
	return f, nil
}

// setRoute sends new connections to addr from now on.
func (f *forwarder) setRoute(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.route = addr
}

// pipe joins client c to a new connection to route until either side ends.
func (f *forwarder) pipe(c net.Conn, route string) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", route, 5*time.Second)
	if err != nil {
		return // the client sees its connection closed, as with a refused dial
	}
	if !f.track(s) {
		return
	}
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
