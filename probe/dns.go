package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Answer is what resolving an endpoint name gave.
type Answer struct {
	Addrs []netip.Addr
	CNAME string  // canonical name, when the name is an alias
	TTL   *uint32 // lowest TTL of the answer records, when known
	Rcode string
}

// Resolver resolves endpoint names for every probe, without caching: the
// point is to see the answer change the moment it changes.
type Resolver struct {
	// Server is "ip:port" of a resolver to ask directly. Empty means the
	// system resolver (which may cache, per the host's configuration).
	Server string
	// Dialer dials the server; nil means a plain net.Dialer.
	Dialer *net.Dialer
}

// DialContext resolves the host of addr with r and connects to the first
// address it answers, for connections outside the probe itself (the
// preflight, the green side), which must reach what the probes reach.
func (r *Resolver) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ans, err := r.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort(ans.Addrs[0].String(), port))
}

// Resolve looks name up. A name that is an IP address resolves to itself.
func (r *Resolver) Resolve(ctx context.Context, name string) (Answer, error) {
	if ip, err := netip.ParseAddr(name); err == nil {
		return Answer{Addrs: []netip.Addr{ip}}, nil
	}
	if r.Server == "" {
		return r.system(ctx, name)
	}
	return r.direct(ctx, name)
}

func (r *Resolver) system(ctx context.Context, name string) (Answer, error) {
	var (
		wg    sync.WaitGroup
		cname string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Only an alias is worth recording; errors here say nothing the
		// address lookup does not.
		if c, err := net.DefaultResolver.LookupCNAME(ctx, name); err == nil {
			c = strings.TrimSuffix(c, ".")
			if !strings.EqualFold(c, strings.TrimSuffix(name, ".")) {
				cname = c
			}
		}
	}()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	wg.Wait()
	if err != nil {
		return Answer{}, err
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return Answer{Addrs: addrs, CNAME: cname}, nil
}

// direct asks r.Server for A and AAAA records, over UDP with a fallback to
// TCP when the answer is truncated.
func (r *Resolver) direct(ctx context.Context, name string) (Answer, error) {
	fqdn := name
	if !strings.HasSuffix(fqdn, ".") {
		fqdn += "."
	}
	qname, err := dnsmessage.NewName(fqdn)
	if err != nil {
		return Answer{}, &net.DNSError{Err: "invalid name", Name: name}
	}
	type result struct {
		a   Answer
		err error
	}
	aCh, aaaaCh := make(chan result, 1), make(chan result, 1)
	// A resolver that drops AAAA queries must not cost the probe its
	// deadline: once A has answered, AAAA gets a short grace.
	aaaaCtx, cancelAAAA := context.WithCancel(ctx)
	defer cancelAAAA()
	go func() {
		a, err := r.query(ctx, qname, dnsmessage.TypeA)
		aCh <- result{a, err}
	}()
	go func() {
		a, err := r.query(aaaaCtx, qname, dnsmessage.TypeAAAA)
		aaaaCh <- result{a, err}
	}()
	a := <-aCh
	var aaaa result
	grace := time.NewTimer(aaaaGrace)
	defer grace.Stop()
	select {
	case aaaa = <-aaaaCh:
	case <-grace.C:
		cancelAAAA()
		aaaa = <-aaaaCh
	}
	// The A answer decides NXDOMAIN and errors; AAAA only adds addresses.
	if a.err != nil {
		return Answer{Rcode: a.a.Rcode}, withName(a.err, name, r.Server)
	}
	out := a.a
	if aaaa.err == nil {
		out.Addrs = append(out.Addrs, aaaa.a.Addrs...)
		if out.CNAME == "" {
			out.CNAME = aaaa.a.CNAME
		}
		out.TTL = minTTL(out.TTL, aaaa.a.TTL)
	}
	if len(out.Addrs) == 0 {
		return out, &net.DNSError{Err: "no such host", Name: name, Server: r.Server, IsNotFound: true}
	}
	return out, nil
}

// aaaaGrace is how long an AAAA answer may trail the A answer.
const aaaaGrace = 200 * time.Millisecond

func withName(err error, name, server string) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		de.Name, de.Server = name, server
		return de
	}
	return &net.DNSError{Err: err.Error(), Name: name, Server: server, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
}

func minTTL(a, b *uint32) *uint32 {
	if a == nil {
		return b
	}
	if b == nil || *a <= *b {
		return a
	}
	return b
}

func (r *Resolver) dialer() *net.Dialer {
	if r.Dialer != nil {
		return r.Dialer
	}
	return &net.Dialer{}
}

func (r *Resolver) query(ctx context.Context, name dnsmessage.Name, t dnsmessage.Type) (Answer, error) {
	id := uint16(rand.Uint32())
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: t, Class: dnsmessage.ClassINET}},
	}
	packed, err := msg.Pack()
	if err != nil {
		return Answer{}, err
	}
	resp, err := r.exchange(ctx, "udp", packed, id)
	if err == nil && resp.Truncated {
		resp, err = r.exchange(ctx, "tcp", packed, id)
	}
	if err != nil {
		return Answer{}, err
	}
	return parseAnswer(resp, name)
}

func (r *Resolver) exchange(ctx context.Context, network string, packed []byte, id uint16) (*dnsmessage.Message, error) {
	conn, err := r.dialer().DialContext(ctx, network, r.Server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(d); err != nil {
			return nil, err
		}
	}
	// Close on cancellation too, so a cancelled probe never waits out the
	// deadline on a silent server.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 65535)
	if network == "tcp" {
		framed := make([]byte, 2+len(packed))
		framed[0], framed[1] = byte(len(packed)>>8), byte(len(packed))
		copy(framed[2:], packed)
		if _, err := conn.Write(framed); err != nil {
			return nil, ctxErr(ctx, err)
		}
		if _, err := readFull(conn, buf[:2]); err != nil {
			return nil, ctxErr(ctx, err)
		}
		n := int(buf[0])<<8 | int(buf[1])
		if _, err := readFull(conn, buf[:n]); err != nil {
			return nil, ctxErr(ctx, err)
		}
		return unpack(buf[:n], id)
	}
	// UDP may lose the question or the answer: ask again every quarter of
	// the time left (at least udpRetry), as stub resolvers do.
	deadline, hasDeadline := ctx.Deadline()
	for {
		if _, err := conn.Write(packed); err != nil {
			return nil, ctxErr(ctx, err)
		}
		retry := udpRetry
		if hasDeadline {
			retry = max(time.Until(deadline)/4, udpRetry)
		}
		if err := conn.SetReadDeadline(time.Now().Add(retry)); err != nil {
			return nil, err
		}
		for {
			n, err := conn.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				break // ask again
			}
			if err != nil {
				return nil, ctxErr(ctx, err)
			}
			m, err := unpack(buf[:n], id)
			if errors.Is(err, errWrongID) {
				continue // a late answer to someone else's question
			}
			return m, err
		}
	}
}

// udpRetry is the shortest wait before a UDP question is sent again.
const udpRetry = 100 * time.Millisecond

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

var errWrongID = errors.New("dns answer id mismatch")

func unpack(b []byte, id uint16) (*dnsmessage.Message, error) {
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		return nil, fmt.Errorf("malformed dns answer: %w", err)
	}
	if m.ID != id || !m.Response {
		return nil, errWrongID
	}
	return &m, nil
}

func parseAnswer(m *dnsmessage.Message, name dnsmessage.Name) (Answer, error) {
	a := Answer{Rcode: strings.TrimPrefix(m.RCode.String(), "RCode")}
	switch m.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return a, &net.DNSError{Err: "no such host", IsNotFound: true}
	default:
		return a, &net.DNSError{Err: "server answered " + a.Rcode, IsTemporary: m.RCode == dnsmessage.RCodeServerFailure}
	}
	want := name
	for _, rr := range m.Answers {
		if !strings.EqualFold(rr.Header.Name.String(), want.String()) {
			continue
		}
		ttl := rr.Header.TTL
		a.TTL = minTTL(a.TTL, &ttl)
		switch body := rr.Body.(type) {
		case *dnsmessage.CNAMEResource:
			want = body.CNAME
			a.CNAME = strings.TrimSuffix(body.CNAME.String(), ".")
		case *dnsmessage.AResource:
			a.Addrs = append(a.Addrs, netip.AddrFrom4(body.A))
		case *dnsmessage.AAAAResource:
			a.Addrs = append(a.Addrs, netip.AddrFrom16(body.AAAA))
		}
	}
	return a, nil
}

// answerStrings renders addresses for events, in the order received.
func answerStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return slices.Clip(out)
}
