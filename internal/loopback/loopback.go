// Package loopback helps tests that talk to servers on loopback: a free
// address, and a flood of keep-alive HTTP connections to measure what a
// flood may cost dbprobe, bounded in count (n connections) and in time (a
// few seconds per connection).
package loopback

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PerConn bounds how long one connection waits for its answer: a server
// capping its connections leaves the surplus in the kernel's accept queue.
const PerConn = 3 * time.Second

// Flood opens n keep-alive connections to addr, each sending one request for
// path and reading the answer within PerConn, and keeps them open until
// the test ends. It returns how many connections it holds.
func Flood(t testing.TB, addr, path string, n int) (held int) {
	t.Helper()
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			_ = c.SetDeadline(time.Now().Add(PerConn))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: dbprobe\r\n\r\n", path)
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return len(conns)
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Sockets counts the socket descriptors this process holds; it fails when
// the process has no descriptor left to read /proc with.
func Sockets() (int, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n, nil
}
