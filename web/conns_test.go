package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbprobe/dbprobe/internal/loopback"
)

// sockets counts this process's open socket descriptors.
func sockets(t *testing.T) int {
	t.Helper()
	n, err := loopback.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConnectionCap: a flood of keep-alive connections far beyond the cap
// holds no more than the cap open in dbprobe (the rest wait in the kernel,
// costing dbprobe no descriptor), and a health check still gets through:
// idle connections make room for new ones.
func TestConnectionCap(t *testing.T) {
	const capConns = 8
	o := Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(), MaxConns: capConns}
	s, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	serveUntilEnd(t, s)
	before := sockets(t)
	held := loopback.Flood(t, s.Addr(), "/metrics", 10*capConns)
	// The flood's own ends are in this process too.
	if got := sockets(t) - before - held; got > capConns {
		t.Errorf("the server holds %d connections after a flood of %d; want at most the cap, %d", got, held, capConns)
	}
	if got := s.OpenConns(); got > capConns {
		t.Errorf("OpenConns = %d; want at most the cap, %d", got, capConns)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + s.Addr() + "/-/healthy")
	if err != nil {
		t.Fatalf("health check during the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health check during the flood = %d, want 200", resp.StatusCode)
	}
}

// TestUnauthorizedConnectionsAreClosed: a client without credentials gets
// its 401 and the connection is closed: a flood of unauthenticated
// clients cannot keep descriptors (937 of 1,000 such connections stayed
// open).
func TestUnauthorizedConnectionsAreClosed(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("basic_auth_users:\n  %s: %s\n", testUser, testHash)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(), WebConfigFile: cfg})
	if err != nil {
		t.Fatal(err)
	}
	serveUntilEnd(t, s)
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: dbprobe\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", resp.StatusCode)
	}
	if !resp.Close {
		t.Errorf("401 answer without Connection: close")
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("read after the 401 = %v, want EOF: the server keeps the connection", err)
	}
}
