package dnsserver_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/dbprobe/dbprobe/lab/dnsserver"
)

const zone = "lab.dbprobe.test"

func start(t *testing.T) *dnsserver.Server {
	t.Helper()
	s, err := dnsserver.Start("127.0.0.1:0", zone, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// resolver is Go's own stub resolver, sending every query to s.
func resolver(s *dnsserver.Server) *net.Resolver {
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.Addr())
		},
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGoResolver(t *testing.T) {
	s := start(t)
	must(t, s.SetA("blue", 5, addrs("127.0.0.2", "::2")...))
	must(t, s.SetA("green."+zone, 5, addrs("127.0.0.3")...))
	must(t, s.SetCNAME("db", "blue", 5))
	r := resolver(s)

	t.Run("LookupHost follows the CNAME", func(t *testing.T) {
		got, err := r.LookupHost(ctxT(t), "db."+zone+".")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if want := []string{"127.0.0.2", "::2"}; !slices.Equal(got, want) {
			t.Errorf("LookupHost(db) = %v, want %v", got, want)
		}
	})
	t.Run("LookupCNAME", func(t *testing.T) {
		got, err := r.LookupCNAME(ctxT(t), "db."+zone+".")
		if err != nil {
			t.Fatal(err)
		}
		if want := "blue." + zone + "."; got != want {
			t.Errorf("LookupCNAME(db) = %q, want %q", got, want)
		}
	})
	t.Run("NXDOMAIN is not found", func(t *testing.T) {
		_, err := r.LookupHost(ctxT(t), "nope."+zone+".")
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("LookupHost(nope) err = %#v, want a *net.DNSError with IsNotFound", err)
		}
	})
	t.Run("flip is seen on the next lookup", func(t *testing.T) {
		before := s.Queries()
		must(t, s.SetCNAME("db", "green", 5))
		got, err := r.LookupHost(ctxT(t), "db."+zone+".")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"127.0.0.3"}; !slices.Equal(got, want) {
			t.Errorf("after flip LookupHost(db) = %v, want %v", got, want)
		}
		if s.Queries() <= before {
			t.Errorf("Queries() = %d after a lookup, want more than %d", s.Queries(), before)
		}
	})
	t.Run("deleted name is not found", func(t *testing.T) {
		must(t, s.Delete("green"))
		_, err := r.LookupHost(ctxT(t), "green."+zone+".")
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("LookupHost(green) after Delete err = %v, want not found", err)
		}
	})
}

// exchange sends one query over network and returns the parsed reply.
func exchange(t *testing.T, s *dnsserver.Server, network string, q []byte) dnsmessage.Message {
	t.Helper()
	c, err := net.DialTimeout(network, s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	var resp []byte
	if network == "udp" {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		resp = buf[:n]
	} else {
		out := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
		if _, err := c.Write(append(out, q...)); err != nil {
			t.Fatal(err)
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		resp = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, resp); err != nil {
			t.Fatal(err)
		}
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	return m
}

func query(t *testing.T, id uint16, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRawQueries(t *testing.T) {
	s := start(t)
	must(t, s.SetA("blue", 7, addrs("127.0.0.2")...))
	must(t, s.SetA("v6only", 7, addrs("::1")...))
	must(t, s.SetCNAME("db", "blue", 3))
	must(t, s.SetCNAME("ext", "db.example.com.", 3))
	must(t, s.SetA("leaf.below", 7, addrs("127.0.0.9")...))

	type rr struct {
		name string
		typ  dnsmessage.Type
		ttl  uint32
	}
	tests := []struct {
		name      string
		qname     string
		qtype     dnsmessage.Type
		rcode     dnsmessage.RCode
		aa        bool
		answers   []rr
		soaInAuth bool
	}{
		{"A record", "blue." + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true,
			[]rr{{"blue." + zone + ".", dnsmessage.TypeA, 7}}, false},
		{"case-insensitive", "BLUE." + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true,
			[]rr{{"blue." + zone + ".", dnsmessage.TypeA, 7}}, false},
		{"CNAME chain", "db." + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true,
			[]rr{{"db." + zone + ".", dnsmessage.TypeCNAME, 3}, {"blue." + zone + ".", dnsmessage.TypeA, 7}}, false},
		{"CNAME query", "db." + zone + ".", dnsmessage.TypeCNAME, dnsmessage.RCodeSuccess, true,
			[]rr{{"db." + zone + ".", dnsmessage.TypeCNAME, 3}}, false},
		{"CNAME out of zone not followed", "ext." + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true,
			[]rr{{"ext." + zone + ".", dnsmessage.TypeCNAME, 3}}, false},
		{"NODATA", "v6only." + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, nil, true},
		{"AAAA", "v6only." + zone + ".", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, true,
			[]rr{{"v6only." + zone + ".", dnsmessage.TypeAAAA, 7}}, false},
		{"NXDOMAIN", "missing." + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil, true},
		{"empty non-terminal", "below." + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, nil, true},
		{"apex SOA", zone + ".", dnsmessage.TypeSOA, dnsmessage.RCodeSuccess, true,
			[]rr{{zone + ".", dnsmessage.TypeSOA, dnsserver.NegativeTTL}}, false},
		{"outside zone", "example.com.", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil, false},
		{"suffix but not in zone", "x" + zone + ".", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil, false},
	}
	for _, network := range []string{"udp", "tcp"} {
		for i, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				id := uint16(1000 + i)
				m := exchange(t, s, network, query(t, id, tt.qname, tt.qtype))
				if m.Header.ID != id || !m.Header.Response {
					t.Errorf("header ID=%d response=%v, want ID=%d response=true", m.Header.ID, m.Header.Response, id)
				}
				if m.Header.RCode != tt.rcode {
					t.Errorf("rcode = %v, want %v", m.Header.RCode, tt.rcode)
				}
				if m.Header.Authoritative != tt.aa {
					t.Errorf("AA = %v, want %v", m.Header.Authoritative, tt.aa)
				}
				var got []rr
				for _, a := range m.Answers {
					got = append(got, rr{a.Header.Name.String(), a.Header.Type, a.Header.TTL})
				}
				if !slices.Equal(got, tt.answers) {
					t.Errorf("answers = %v, want %v", got, tt.answers)
				}
				soa := len(m.Authorities) == 1 && m.Authorities[0].Header.Type == dnsmessage.TypeSOA
				if soa != tt.soaInAuth {
					t.Errorf("SOA in authority = %v (%v), want %v", soa, m.Authorities, tt.soaInAuth)
				}
				if soa {
					body := m.Authorities[0].Body.(*dnsmessage.SOAResource)
					if body.MinTTL != dnsserver.NegativeTTL {
						t.Errorf("SOA minimum = %d, want %d", body.MinTTL, dnsserver.NegativeTTL)
					}
				}
			})
		}
	}
}

func TestAddressesInAnswer(t *testing.T) {
	s := start(t)
	must(t, s.SetA("blue", 5, addrs("127.0.0.2", "127.0.0.4")...))
	m := exchange(t, s, "udp", query(t, 1, "blue."+zone+".", dnsmessage.TypeA))
	var got []netip.Addr
	for _, a := range m.Answers {
		got = append(got, netip.AddrFrom4(a.Body.(*dnsmessage.AResource).A))
	}
	if want := addrs("127.0.0.2", "127.0.0.4"); !slices.Equal(got, want) {
		t.Errorf("A answers = %v, want %v", got, want)
	}
}

func TestMalformedQueries(t *testing.T) {
	s := start(t)
	two := dnsmessage.Message{
		Header: dnsmessage.Header{ID: 9},
		Questions: []dnsmessage.Question{
			{Name: dnsmessage.MustNewName("a." + zone + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
			{Name: dnsmessage.MustNewName("b." + zone + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
		},
	}
	twoQ, err := two.Pack()
	must(t, err)
	truncatedQuestion := query(t, 10, "a."+zone+".", dnsmessage.TypeA)
	truncatedQuestion = truncatedQuestion[:len(truncatedQuestion)-3]

	for _, tt := range []struct {
		name string
		q    []byte
		id   uint16
	}{
		{"two questions", twoQ, 9},
		{"cut-off question", truncatedQuestion, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := exchange(t, s, "udp", tt.q)
			if m.Header.RCode != dnsmessage.RCodeFormatError || m.Header.ID != tt.id {
				t.Errorf("rcode %v id %d, want FORMERR id %d", m.Header.RCode, m.Header.ID, tt.id)
			}
		})
	}

	// Garbage shorter than a header gets no reply; the server must keep
	// serving afterwards.
	c, err := net.Dial("udp", s.Addr())
	must(t, err)
	defer c.Close()
	if _, err := c.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	must(t, s.SetA("after", 1, addrs("127.0.0.5")...))
	if got, err := resolver(s).LookupHost(ctxT(t), "after."+zone+"."); err != nil || !slices.Equal(got, []string{"127.0.0.5"}) {
		t.Errorf("after garbage: LookupHost = %v, %v; want [127.0.0.5]", got, err)
	}
}

func TestBigAnswerTruncatedOverUDP(t *testing.T) {
	s := start(t)
	var many []netip.Addr
	for i := range 60 {
		many = append(many, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	must(t, s.SetA("big", 5, many...))
	m := exchange(t, s, "udp", query(t, 1, "big."+zone+".", dnsmessage.TypeA))
	if !m.Header.Truncated || len(m.Answers) != 0 {
		t.Errorf("UDP reply: TC=%v with %d answers, want TC=true with none", m.Header.Truncated, len(m.Answers))
	}
	m = exchange(t, s, "tcp", query(t, 2, "big."+zone+".", dnsmessage.TypeA))
	if m.Header.Truncated || len(m.Answers) != 60 {
		t.Errorf("TCP reply: TC=%v with %d answers, want TC=false with 60", m.Header.Truncated, len(m.Answers))
	}
	// Go's resolver retries over TCP on TC.
	got, err := resolver(s).LookupHost(ctxT(t), "big."+zone+".")
	if err != nil || len(got) != 60 {
		t.Errorf("LookupHost(big) = %d addresses, %v; want 60", len(got), err)
	}
}

func TestNames(t *testing.T) {
	s := start(t)
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"db", "db." + zone + ".", false},
		{"DB", "db." + zone + ".", false},
		{"db." + zone, "db." + zone + ".", false},
		{"db." + zone + ".", "db." + zone + ".", false},
		{"@", zone + ".", false},
		{"", zone + ".", false},
		{"example.com.", "", true},
		{"bad..label", "", true},
	}
	for _, tt := range tests {
		got, err := s.Name(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Name(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if err := s.SetA("example.com.", 1, addrs("127.0.0.1")...); err == nil {
		t.Error("SetA outside the zone = nil, want an error")
	}
	if err := s.SetA("x", 1, netip.Addr{}); err == nil {
		t.Error("SetA with an invalid address = nil, want an error")
	}
	if _, err := dnsserver.Start("127.0.0.1:0", "", nil); err == nil {
		t.Error("Start with an empty zone = nil, want an error")
	}
}

func TestCloseWithOpenTCPConnection(t *testing.T) {
	s, err := dnsserver.Start("127.0.0.1:0", zone, nil)
	must(t, err)
	c, err := net.Dial("tcp", s.Addr())
	must(t, err)
	defer c.Close()
	// Wait until the server tracks the connection: a query answered on it.
	q := query(t, 3, "x."+zone+".", dnsmessage.TypeA)
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
		t.Fatal(err)
	}
	must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a TCP client connected")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("dial after Close succeeded, want refused")
	}
}
