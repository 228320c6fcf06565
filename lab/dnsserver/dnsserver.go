// Package dnsserver is a small authoritative DNS server for one zone, run
// in-process over UDP and TCP. dbprobe's lab points its cluster endpoint name
// at it and moves the name during a switchover; tests of dbprobe's resolver
// use it as a real server on loopback.
//
// The server answers from records held in memory, which the owner changes at
// any time with SetA, SetCNAME and Delete; every query sees the records as
// they are when it arrives. It speaks just enough DNS for resolvers:
//
//   - names in the zone are answered authoritatively (AA set);
//   - a CNAME is followed inside the zone, the answer carrying the CNAME and
//     then the target's records;
//   - an unknown name gets NXDOMAIN and a name without records of the asked
//     type gets an empty NOERROR (NODATA), both with the zone's SOA in the
//     authority section, whose minimum (the negative-caching TTL) is 1 s;
//   - names outside the zone get REFUSED, malformed queries FORMERR (or
//     nothing, when not even the header can be read), other opcodes NOTIMP;
//   - an answer too big for a UDP reply is sent truncated (TC) so the
//     resolver retries over TCP.
package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// NegativeTTL is the SOA minimum: how long resolvers may cache NXDOMAIN and
// NODATA. Short, because the lab creates and deletes names mid-run.
const NegativeTTL = 1

// tcpIdleTimeout closes TCP connections a client keeps open without asking.
const tcpIdleTimeout = 10 * time.Second

// maxChain bounds CNAME chains followed inside the zone (and loops).
const maxChain = 8

// Server is a running DNS server. Its methods are safe for concurrent use.
type Server struct {
	zone string // lowercase, with the trailing dot
	soa  dnsmessage.SOAResource
	log  *slog.Logger
	udp  net.PacketConn
	tcp  net.Listener

	queries atomic.Int64

	mu      sync.RWMutex
	records map[string]*rrset // key: lowercase FQDN with trailing dot
	serial  uint32

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// rrset is everything a name holds: address records or one CNAME.
type rrset struct {
	a, aaaa       []netip.Addr
	aTTL, aaaaTTL uint32
	hasCNAME      bool
	cname         string // FQDN, lowercase
	cnameTTL      uint32
}

// Start listens on addr over both UDP and TCP (the same port; "127.0.0.1:0"
// picks a free one) and serves zone, e.g. "lab.dbprobe.test". A nil logger
// discards the per-query debug records. Close stops it.
func Start(addr, zone string, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	z := canonical(zone)
	if err := checkName(z); err != nil || z == "." {
		return nil, fmt.Errorf("dns server: zone %q: %w", zone, errBadName)
	}
	s := &Server{
		zone:    z,
		log:     logger,
		records: map[string]*rrset{},
		conns:   map[net.Conn]struct{}{},
		serial:  1,
	}
	ns, err1 := dnsmessage.NewName("ns." + z)
	mbox, err2 := dnsmessage.NewName("hostmaster." + z)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("dns server: zone %q: %w", zone, err)
	}
	s.soa = dnsmessage.SOAResource{
		NS:      ns,
		MBox:    mbox,
		Refresh: 60,
		Retry:   10,
		Expire:  600,
		MinTTL:  NegativeTTL,
	}
	if err := s.listen(addr); err != nil {
		return nil, err
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	s.log.Info("dns server listening", "addr", s.Addr(), "zone", s.zone)
	return s, nil
}

// listen binds UDP and then TCP on the same port; when the port was left to
// the system and TCP finds it taken, it tries another.
func (s *Server) listen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("dns server: %w", err)
		}
		tcpAddr := net.JoinHostPort(host, fmt.Sprint(udp.LocalAddr().(*net.UDPAddr).Port))
		tcp, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			s.udp, s.tcp = udp, tcp
			return nil
		}
		udp.Close()
		if port != "0" || attempt == 10 {
			return fmt.Errorf("dns server: %w", err)
		}
	}
}

// Addr is the "host:port" the server answers on, over UDP and TCP.
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Zone is the zone served, lowercase with the trailing dot.
func (s *Server) Zone() string { return s.zone }

// Queries is the number of queries received so far with a readable header,
// whatever their answer (REFUSED and FORMERR included).
func (s *Server) Queries() int { return int(s.queries.Load()) }

// Name returns the fully qualified, lowercase form of name as the server
// stores it: a name ending in the zone is taken as is, a name ending in a dot
// must be in the zone, and any other name is relative to the zone ("db" is
// db.<zone>; "" and "@" are the apex).
func (s *Server) Name(name string) (string, error) {
	abs := strings.HasSuffix(name, ".")
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	switch {
	case n == "" || n == "@":
		n = s.zone
	case s.inZone(n + "."):
		n += "."
	case abs:
		return "", fmt.Errorf("dns name %q: %w %s", name, errOutsideZone, s.zone)
	default:
		n += "." + s.zone
	}
	if err := checkName(n); err != nil {
		return "", fmt.Errorf("dns name %q: %w", name, err)
	}
	return n, nil
}

var errBadName = errors.New("not a valid domain name")

// checkName rejects what could not be sent in a reply: empty or over-long
// labels, over-long names. n is canonical (trailing dot).
func checkName(n string) error {
	if len(n) > 254 {
		return errBadName
	}
	if n == "." {
		return nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(n, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return errBadName
		}
	}
	return nil
}

var errOutsideZone = errors.New("is outside the zone")

// SetA replaces the records of name (see Name) with address records: IPv4
// addresses become A records, IPv6 ones AAAA, each with ttl. A CNAME the name
// had is dropped. With no ips the name still exists (NODATA, not NXDOMAIN).
// The next query sees the change.
func (s *Server) SetA(name string, ttl uint32, ips ...netip.Addr) error {
	set := &rrset{aTTL: ttl, aaaaTTL: ttl}
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case ip.Is4():
			set.a = append(set.a, ip)
		case ip.Is6():
			set.aaaa = append(set.aaaa, ip)
		default:
			return fmt.Errorf("set %s: invalid address %v", name, ip)
		}
	}
	return s.put(name, set)
}

// SetCNAME makes name (see Name) an alias of target with ttl, replacing its
// other records. target is resolved like name, so "blue" means
// blue.<zone>; give a FQDN with a trailing dot for a name outside the zone.
// The next query sees the change.
func (s *Server) SetCNAME(name, target string, ttl uint32) error {
	t, err := s.Name(target)
	if errors.Is(err, errOutsideZone) {
		t, err = canonical(target), nil
		if cerr := checkName(t); cerr != nil {
			err = fmt.Errorf("cname target %q: %w", target, cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return s.put(name, &rrset{cname: t, cnameTTL: ttl, hasCNAME: true})
}

// Delete removes name (see Name) and its records; it then gets NXDOMAIN
// (unless names below it remain). Deleting a missing name is a no-op.
func (s *Server) Delete(name string) error {
	n, err := s.Name(name)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, n)
	s.serial++
	return nil
}

func (s *Server) put(name string, set *rrset) error {
	n, err := s.Name(name)
	if err != nil {
		return fmt.Errorf("set: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[n] = set
	s.serial++
	return nil
}

// Close stops both listeners, closes open TCP connections and waits for
// every goroutine of the server to return. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.connMu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.connMu.Unlock()
		err = errors.Join(s.udp.Close(), s.tcp.Close())
		s.wg.Wait()
	})
	return err
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("dns server: udp read", "err", err)
			}
			return
		}
		resp := s.handle(buf[:n], true)
		if resp == nil {
			continue
		}
		if _, err := s.udp.WriteTo(resp, from); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Debug("dns server: udp write", "to", from, "err", err)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("dns server: tcp accept", "err", err)
			}
			return
		}
		s.connMu.Lock()
		if s.closed {
			s.connMu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.connMu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers length-prefixed queries on one TCP connection until the
// client closes it, stays idle too long, or sends garbage.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.connMu.Lock()
		delete(s.conns, c)
		s.connMu.Unlock()
		c.Close()
	}()
	var lenBuf [2]byte
	for {
		if err := c.SetReadDeadline(time.Now().Add(tcpIdleTimeout)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp := s.handle(msg, false)
		if resp == nil {
			return
		}
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(resp)), uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// maxUDP is the reply size a UDP client without EDNS accepts; with EDNS we
// honour its size up to the commonly safe 1232.
const (
	maxUDP     = 512
	maxUDPEDNS = 1232
)

// handle turns one query into its reply, or nil when not even a header can
// be read (nothing to answer to).
func (s *Server) handle(query []byte, udp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		s.log.Debug("dns server: dropped unreadable query", "err", err)
		return nil
	}
	if h.Response {
		return nil // never answer an answer
	}
	s.queries.Add(1)
	resp := dnsmessage.Message{Header: dnsmessage.Header{
		ID:               h.ID,
		Response:         true,
		OpCode:           h.OpCode,
		RecursionDesired: h.RecursionDesired,
	}}
	if h.OpCode != 0 {
		resp.Header.RCode = dnsmessage.RCodeNotImplemented
		return s.pack(&resp, udp, maxUDP)
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		resp.Header.RCode = dnsmessage.RCodeFormatError
		return s.pack(&resp, udp, maxUDP)
	}
	q := qs[0]
	resp.Questions = qs
	limit := maxUDP
	if err := p.SkipAllAnswers(); err == nil {
		if err := p.SkipAllAuthorities(); err == nil {
			if adds, err := p.AllAdditionals(); err == nil {
				for _, a := range adds {
					if a.Header.Type == dnsmessage.TypeOPT {
						limit = min(max(int(a.Header.Class), maxUDP), maxUDPEDNS)
					}
				}
			}
		}
	}
	s.answer(&resp, q)
	s.log.Debug("dns query", "name", q.Name.String(), "type", q.Type, "rcode", resp.Header.RCode, "answers", len(resp.Answers))
	return s.pack(&resp, udp, limit)
}

// answer fills resp for question q from the records as they are now.
func (s *Server) answer(resp *dnsmessage.Message, q dnsmessage.Question) {
	name := strings.ToLower(q.Name.String())
	if q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY || !s.inZone(name) {
		resp.Header.RCode = dnsmessage.RCodeRefused
		return
	}
	resp.Header.Authoritative = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	for range maxChain {
		if name == s.zone && (q.Type == dnsmessage.TypeSOA || q.Type == dnsmessage.TypeNS) {
			s.apex(resp, q.Type)
			return
		}
		set, ok := s.records[name]
		if !ok {
			if !s.hasDescendant(name) && name != s.zone {
				resp.Header.RCode = dnsmessage.RCodeNameError
			}
			s.negative(resp)
			return
		}
		if set.hasCNAME {
			resp.Answers = append(resp.Answers, resource(name, dnsmessage.TypeCNAME, set.cnameTTL,
				&dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(set.cname)}))
			if q.Type == dnsmessage.TypeCNAME || !s.inZone(set.cname) {
				return
			}
			name = set.cname
			continue
		}
		n := len(resp.Answers)
		if q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL {
			for _, ip := range set.a {
				resp.Answers = append(resp.Answers, resource(name, dnsmessage.TypeA, set.aTTL, &dnsmessage.AResource{A: ip.As4()}))
			}
		}
		if q.Type == dnsmessage.TypeAAAA || q.Type == dnsmessage.TypeALL {
			for _, ip := range set.aaaa {
				resp.Answers = append(resp.Answers, resource(name, dnsmessage.TypeAAAA, set.aaaaTTL, &dnsmessage.AAAAResource{AAAA: ip.As16()}))
			}
		}
		if len(resp.Answers) == n {
			s.negative(resp)
		}
		return
	}
	// A chain longer than maxChain is a loop or a mistake; answer what was
	// followed so far and let the resolver give up.
	resp.Header.RCode = dnsmessage.RCodeServerFailure
}

func (s *Server) inZone(name string) bool {
	return name == s.zone || strings.HasSuffix(name, "."+s.zone)
}

// hasDescendant reports whether some record lies below name, which makes
// name an empty non-terminal: it exists (NODATA), it is not NXDOMAIN.
func (s *Server) hasDescendant(name string) bool {
	for n := range s.records {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}

func (s *Server) apex(resp *dnsmessage.Message, t dnsmessage.Type) {
	if t == dnsmessage.TypeSOA {
		resp.Answers = append(resp.Answers, s.soaResource())
		return
	}
	resp.Answers = append(resp.Answers, resource(s.zone, dnsmessage.TypeNS, NegativeTTL, &dnsmessage.NSResource{NS: s.soa.NS}))
}

// negative adds the SOA that lets resolvers cache NXDOMAIN/NODATA briefly.
func (s *Server) negative(resp *dnsmessage.Message) {
	resp.Authorities = append(resp.Authorities, s.soaResource())
}

func (s *Server) soaResource() dnsmessage.Resource {
	soa := s.soa
	soa.Serial = s.serial
	return resource(s.zone, dnsmessage.TypeSOA, NegativeTTL, &soa)
}

func resource(name string, t dnsmessage.Type, ttl uint32, body dnsmessage.ResourceBody) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: t, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   body,
	}
}

// pack serialises resp; a UDP reply over limit goes out with TC set and no
// records, so the client asks again over TCP.
func (s *Server) pack(resp *dnsmessage.Message, udp bool, limit int) []byte {
	b, err := resp.Pack()
	if err == nil && (!udp || len(b) <= limit) {
		return b
	}
	if err != nil {
		s.log.Warn("dns server: cannot pack reply", "err", err)
		resp.Header.RCode = dnsmessage.RCodeServerFailure
	} else {
		resp.Header.Truncated = true
	}
	resp.Answers, resp.Authorities, resp.Additionals = nil, nil, nil
	b, err = resp.Pack()
	if err != nil {
		return nil
	}
	return b
}

// canonical lowercases name and adds the trailing dot.
func canonical(name string) string {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	return n + "."
}
