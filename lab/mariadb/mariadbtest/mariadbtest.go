// Package mariadbtest starts real mariadbd servers for tests.
//
// A test that calls Start needs MariaDB installed (on Debian/Ubuntu:
// apt-get install mariadb-server); without it the test fails, it does not
// skip, because a skipped database test passes CI having tested nothing.
package mariadbtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/lab/mariadb"
)

// StartTimeout bounds Start; a server normally starts in well under a second,
// the rest is room for a loaded CI machine and a first template build.
const StartTimeout = 2 * time.Minute

// Start starts a server in a fresh t.TempDir and closes it when the test
// ends. With no opts.Logger the server logs to the test's output. If the
// test failed, the tail of the server's error log is logged at cleanup.
func Start(t testing.TB, opts mariadb.Options) *mariadb.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if opts.Binaries.Mariadbd == "" || opts.Binaries.InstallDB == "" {
		if _, err := mariadb.FindBinaries(); err != nil {
			t.Fatalf("this test needs a real MariaDB server: %v (see docs/testing.md)", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	s, err := mariadb.Start(ctx, t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start mariadb: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mariadb %s error log %s ends:\n%s", s.Addr(), s.ErrorLog(), s.LogTail(30))
		}
		if err := s.Close(); err != nil {
			t.Errorf("close mariadb %s: %v", s.Addr(), err)
		}
	})
	return s
}

// Exec runs stmts as root on s (see mariadb.Server.Exec) and fails the test
// on error.
func Exec(t testing.TB, s *mariadb.Server, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
}

// CreateUser creates a user on s (see mariadb.Server.CreateUser) and fails
// the test on error.
func CreateUser(t testing.TB, s *mariadb.Server, name, password string, grants ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.CreateUser(ctx, name, password, grants...); err != nil {
		t.Fatal(err)
	}
}
