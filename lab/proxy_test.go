package lab

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

// TestProxyMovesSessions drives the lab's proxy between two real servers:
// a client connection stays up while the proxy holds its command and moves
// it to the other server; a command held longer than the maximum pause is
// dropped with its connection.
func TestProxyMovesSessions(t *testing.T) {
	const user, password = "probe", "proxy-test-pw"
	var servers [2]*mariadb.Server
	for i := range servers {
		servers[i] = mariadbtest.Start(t, mariadb.Options{ServerID: uint32(101 + i)})
		mariadbtest.CreateUser(t, servers[i], user, password, "SELECT ON *.*")
	}
	p, err := startProxy("127.0.0.1:0", servers[0].Addr(), user, password, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", p.ln.Addr().String()
	cfg.Logger = &mysql.NopLogger{} // the dropped connection is expected
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	serverID := func() (int, error) {
		var id int
		err := c.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
		return id, err
	}
	if id, err := serverID(); err != nil || id != 101 {
		t.Fatalf("before the pause: server_id %d, %v; want 101", id, err)
	}

	awaitHeld := func() {
		t.Helper()
		wait.For(t, 30*time.Second, "the proxy to hold the query", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.waiting == 1
		})
	}
	p.pause(time.Minute)
	got := make(chan error, 1)
	var id int
	go func() {
		var err error
		id, err = serverID()
		got <- err
	}()
	awaitHeld()
	select {
	case err := <-got:
		t.Fatalf("the query returned while the proxy was paused (%v)", err)
	default:
	}
	if released, dropped := p.resumeTo(servers[1].Addr()); released != 1 || dropped != 0 {
		t.Errorf("resume: %d released, %d dropped; want 1 and 0", released, dropped)
	}
	if err := <-got; err != nil || id != 102 {
		t.Fatalf("the held query: server_id %d, %v; want 102 on the same connection", id, err)
	}
	if id, err := serverID(); err != nil || id != 102 {
		t.Errorf("after the move: server_id %d, %v; want 102", id, err)
	}

	p.pause(50 * time.Millisecond)
	_, err = serverID()
	if !errors.Is(err, mysql.ErrInvalidConn) {
		t.Errorf("a query held past the maximum pause: %v; want the connection dropped (%v)", err, mysql.ErrInvalidConn)
	}
	if _, dropped := p.resumeTo(servers[0].Addr()); dropped != 1 {
		t.Errorf("%d dropped after the maximum pause; want 1", dropped)
	}

	// Closing the proxy releases what it holds: nothing waits a minute.
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	p.pause(time.Minute)
	go func() {
		var id int
		got <- c2.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
	}()
	awaitHeld()
	p.close()
	if err := <-got; err == nil {
		t.Error("a query held while the proxy closed succeeded; want its connection gone")
	}
}
