package lab

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// proxy stands in for RDS Proxy: clients stay connected to it while the
// database behind it changes. It speaks just enough of the MySQL protocol to
// move a client's session to another server between two commands: it relays
// the client's login to the first server, keeps the client's handshake
// response, and when the route has changed logs in to the new server with
// the same capabilities, user and database and the password it holds (as
// RDS Proxy holds the database credentials), then goes on relaying. While
// paused it holds new connections and new commands, each at most maxPause
// (RDS Proxy's ConnectionBorrowTimeout), and drops the ones that waited
// longer. Commands already sent to a server complete there.
//
// It does not track transactions or session state: dbprobe runs neither
// (autocommit statements with interpolated parameters), where RDS Proxy
// cancels sessions in a transaction and pins sessions with state. It speaks
// no TLS and knows only mysql_native_password, which is what the lab's
// servers use.
type proxy struct {
	*tcpServer
	log      *slog.Logger
	user     string
	password string

	mu       sync.Mutex
	route    string
	maxPause time.Duration
	resume   chan struct{} // non-nil while paused; closed by resumeTo
	waiting  int           // connections and commands held right now
	dropped  int           // held longer than maxPause, and dropped
	closed   bool
}

func startProxy(addr, route, user, password string, log *slog.Logger) (*proxy, error) {
	t, err := listenTCP(addr, log)
	if err != nil {
		return nil, err
	}
	p := &proxy{tcpServer: t, log: log, user: user, password: password, route: route}
	t.serve("lab proxy", p.handle)
	return p, nil
}

// pause holds new connections and commands from now on, each at most
// maxPause.
func (p *proxy) pause(maxPause time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maxPause = maxPause
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

// resumeTo sends everything held, and everything after, to route, and
// returns how many connections and commands were waiting and how many were
// dropped during the pause.
func (p *proxy) resumeTo(route string) (released, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.route = route
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
	released, dropped = p.waiting, p.dropped
	p.dropped = 0
	return released, dropped
}

// errHeldTooLong is what a connection or command held longer than the
// proxy's maximum pause gets: its client connection is closed.
var errHeldTooLong = errors.New("held longer than the proxy's maximum pause")

// gate returns the current route once the proxy is not paused, waiting at
// most maxPause, and whether it waited.
func (p *proxy) gate() (route string, waited bool, err error) {
	var timeout <-chan time.Time
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return "", waited, net.ErrClosed
		}
		ch := p.resume
		if ch == nil {
			route := p.route
			p.mu.Unlock()
			return route, waited, nil
		}
		p.waiting++
		maxPause := p.maxPause
		p.mu.Unlock()
		waited = true
		if timeout == nil {
			t := time.NewTimer(maxPause)
			defer t.Stop()
			timeout = t.C
		}
		var err error
		select {
		case <-ch:
		case <-timeout:
			err = errHeldTooLong
		}
		p.mu.Lock()
		p.waiting--
		if err != nil {
			p.dropped++
		}
		p.mu.Unlock()
		if err != nil {
			return "", waited, err
		}
	}
}

// handle relays one client connection.
func (p *proxy) handle(c net.Conn) {
	s := &session{p: p, client: c, cr: bufio.NewReader(c)}
	err := s.run()
	s.close()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		p.log.Info("lab proxy closed a client connection", "client", c.RemoteAddr(), "err", err)
	}
}

// close releases what the proxy holds, cuts every connection and waits for
// the sessions.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
	p.mu.Unlock()
	p.tcpServer.close()
}

// session is one client connection and the server it is relayed to.
type session struct {
	p      *proxy
	client net.Conn
	cr     *bufio.Reader
	// hello is the client's handshake response, replayed (with a new
	// scramble) to log in to another server.
	hello []byte
	route string

	mu      sync.Mutex
	backend net.Conn
}

func (s *session) run() error {
	route, _, err := s.p.gate()
	if err != nil {
		return err
	}
	if err := s.login(route); err != nil {
		return err
	}
	for {
		seq, payload, err := readPacket(s.cr)
		if err != nil {
			return err
		}
		// Sequence 0 starts a command: the client has read the whole reply
		// to the previous one, so the session is idle and may move.
		if seq == 0 {
			route, waited, err := s.p.gate()
			if err != nil {
				return err
			}
			if waited && !s.clientAlive() {
				return io.EOF
			}
			if route != s.route {
				if err := s.move(route); err != nil {
					return err
				}
			}
		}
		if err := writePacket(s.current(), seq, payload); err != nil {
			return err
		}
	}
}

// clientAlive reports whether the client is still there after a wait: one
// that gave up (a probe's deadline) must not have its command run late.
func (s *session) clientAlive() bool {
	if s.cr.Buffered() > 0 {
		return true
	}
	_ = s.client.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := s.cr.Peek(1)
	_ = s.client.SetReadDeadline(time.Time{})
	return err == nil || errors.Is(err, os.ErrDeadlineExceeded)
}

// login relays the client's login to route and keeps its handshake
// response.
func (s *session) login(route string) error {
	b, err := s.p.dial(route)
	if err != nil {
		return err
	}
	s.setBackend(b, route)
	br := bufio.NewReader(b)
	seq, greeting, err := readPacket(br)
	if err != nil {
		return err
	}
	if err := writePacket(s.client, seq, greeting); err != nil {
		return err
	}
	for {
		seq, payload, err := readPacket(s.cr)
		if err != nil {
			return err
		}
		if s.hello == nil {
			s.hello = payload
		}
		if err := writePacket(b, seq, payload); err != nil {
			return err
		}
		seq, reply, err := readPacket(br)
		if err != nil {
			return err
		}
		if err := writePacket(s.client, seq, reply); err != nil {
			return err
		}
		switch {
		case len(reply) == 0:
			return errors.New("empty reply during login")
		case reply[0] == 0x00:
			s.pump(b, br)
			return nil
		case reply[0] == 0xff:
			return errors.New("the server refused the client's login")
		}
		// An auth switch or more auth data: the client answers.
	}
}

// move logs in to route as the client did and makes it the session's
// server; the old one is closed.
func (s *session) move(route string) error {
	if s.hello == nil {
		return errors.New("no handshake response to replay")
	}
	b, err := s.p.dial(route)
	if err != nil {
		return err
	}
	br := bufio.NewReader(b)
	if err := s.replayLogin(b, br); err != nil {
		b.Close()
		s.p.forget(b)
		return fmt.Errorf("log in to %s: %w", route, err)
	}
	old := s.current()
	s.setBackend(b, route)
	old.Close()
	s.pump(b, br)
	return nil
}

func (s *session) replayLogin(b net.Conn, br *bufio.Reader) error {
	_, greeting, err := readPacket(br)
	if err != nil {
		return err
	}
	scramble, err := greetingScramble(greeting)
	if err != nil {
		return err
	}
	hello, user, err := withAuthResponse(s.hello, nativePassword(scramble, s.p.password))
	if err != nil {
		return err
	}
	if user != s.p.user {
		return fmt.Errorf("no password for user %q", user)
	}
	if err := writePacket(b, 1, hello); err != nil {
		return err
	}
	seq, reply, err := readPacket(br)
	if err != nil {
		return err
	}
	if len(reply) > 0 && reply[0] == 0xfe { // auth switch: plugin name, NUL, new scramble
		name, rest, _ := bytes.Cut(reply[1:], []byte{0})
		if string(name) != "mysql_native_password" || len(rest) < 20 {
			return fmt.Errorf("the server asks for auth plugin %q", name)
		}
		if err := writePacket(b, seq+1, nativePassword(rest[:20], s.p.password)); err != nil {
			return err
		}
		if _, reply, err = readPacket(br); err != nil {
			return err
		}
	}
	switch {
	case len(reply) > 0 && reply[0] == 0x00:
		return nil
	case len(reply) > 3 && reply[0] == 0xff:
		return fmt.Errorf("refused: %d %s", binary.LittleEndian.Uint16(reply[1:3]), reply[3:])
	}
	return errors.New("unexpected reply to the login")
}

func (s *session) setBackend(b net.Conn, route string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backend, s.route = b, route
}

func (s *session) current() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backend
}

// pump copies b's replies to the client until b closes. When b is still
// the session's server then, the client loses its connection, as it would
// without the proxy; a server the session moved away from just goes.
func (s *session) pump(b net.Conn, br *bufio.Reader) {
	s.p.goTracked(b, func() {
		_, _ = br.WriteTo(s.client)
		b.Close()
		if s.current() == b {
			s.client.Close()
		}
	})
}

func (s *session) close() {
	s.client.Close()
	if b := s.current(); b != nil {
		b.Close()
		s.p.forget(b)
	}
}

// dial connects to a server, tracked from the start so that closing the
// proxy cuts it even while a login on it waits.
func (p *proxy) dial(route string) (net.Conn, error) {
	b, err := net.DialTimeout("tcp", route, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if !p.track(b) {
		return nil, net.ErrClosed
	}
	return b, nil
}

// readPacket reads one MySQL packet: a 3-byte little-endian length, a
// sequence number and the payload. A payload of 16 MiB - 1 continues in the
// next packet, which this reads as a packet of its own.
func readPacket(r io.Reader) (seq byte, payload []byte, err error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[3], payload, nil
}

func writePacket(w io.Writer, seq byte, payload []byte) error {
	buf := make([]byte, 4+len(payload))
	buf[0], buf[1], buf[2], buf[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), seq
	copy(buf[4:], payload)
	_, err := w.Write(buf)
	return err
}

// greetingScramble returns the 20-byte scramble of a protocol-10 greeting.
func greetingScramble(g []byte) ([]byte, error) {
	bad := errors.New("malformed server greeting")
	if len(g) < 1 || g[0] != 10 {
		return nil, bad
	}
	i := bytes.IndexByte(g[1:], 0)
	if i < 0 {
		return nil, bad
	}
	pos := 1 + i + 1 + 4 // server version, NUL, connection id
	if len(g) < pos+8+1+2+1+2+2+1+10+12 {
		return nil, bad
	}
	scramble := append([]byte{}, g[pos:pos+8]...)
	pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 // part 1, filler, caps, charset, status, caps, length, reserved
	return append(scramble, g[pos:pos+12]...), nil
}

// Capability flags of the handshake response this proxy needs to read.
const (
	capSecureConnection  = 0x00008000
	capPluginAuthLenenc  = 0x00200000
	handshakeFixedLength = 4 + 4 + 1 + 23
)

// withAuthResponse returns the client handshake response hello with its
// auth response replaced by auth, and the user it names.
func withAuthResponse(hello, auth []byte) ([]byte, string, error) {
	bad := errors.New("malformed client handshake response")
	if len(hello) < handshakeFixedLength+1 {
		return nil, "", bad
	}
	caps := binary.LittleEndian.Uint32(hello)
	pos := handshakeFixedLength
	i := bytes.IndexByte(hello[pos:], 0)
	if i < 0 {
		return nil, "", bad
	}
	user := string(hello[pos : pos+i])
	pos += i + 1
	start := pos
	var n int
	switch {
	case caps&capPluginAuthLenenc != 0:
		if pos >= len(hello) || hello[pos] >= 0xfb {
			return nil, "", bad // longer than 250 bytes: never a native password
		}
		n, pos = int(hello[pos]), pos+1
	case caps&capSecureConnection != 0:
		if pos >= len(hello) {
			return nil, "", bad
		}
		n, pos = int(hello[pos]), pos+1
	default:
		return nil, "", errors.New("client without secure connection auth")
	}
	if pos+n > len(hello) {
		return nil, "", bad
	}
	out := append([]byte{}, hello[:start]...)
	out = append(out, byte(len(auth)))
	out = append(out, auth...)
	out = append(out, hello[pos+n:]...)
	return out, user, nil
}

// nativePassword is mysql_native_password's answer to scramble:
// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
func nativePassword(scramble []byte, password string) []byte {
	if password == "" {
		return nil
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(scramble)
	h.Write(h2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= h1[i]
	}
	return out
}
