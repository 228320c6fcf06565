package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/awsrds"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/testca"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

// failingCreds is an AWS credentials provider that cannot get credentials,
// as when STS is unreachable.
type failingCreds struct{}

func (failingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, errors.New("operation error STS: AssumeRoleWithWebIdentity, dial tcp: i/o timeout")
}

// TestIAMTokenOverTLS proves an IAM token reaches MariaDB through the driver
// over TLS: the server (with a certificate from a throwaway CA) knows a user
// whose password is the token dbprobe signs at a fixed time with fixed
// credentials and which REQUIRE SSL. MariaDB has no AWSAuthenticationPlugin;
// a mysql_native_password user checks the same string. Renewal is seen by the
// server (the old password no longer matches), and a token that cannot be
// made is class iam_token, not auth.
func TestIAMTokenOverTLS(t *testing.T) {
	ca := testca.New(t, "dbprobe test CA")
	s := startServer(t, mariadb.Options{Args: ca.MariaDBArgs(t, "127.0.0.1")})
	ctx := context.Background()

	clk := &tokenClock{t: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
	creds := credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	src := awsrds.NewTokenSource(s.Addr(), "eu-west-1", "iam_probe", creds, clk.Now)
	token, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mariadbtest.Exec(t, s,
		"CREATE USER 'iam_probe'@'%' IDENTIFIED BY "+mariadb.Quote(token)+" REQUIRE SSL",
		"GRANT SELECT ON *.* TO 'iam_probe'@'%'")

	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	mc := s.Config("iam_probe", "")
	mc.TLS = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if err := awsrds.Attach(mc, src); err != nil {
		t.Fatal(err)
	}

	// The session is the token's user, over TLS.
	conn, err := mustConnector(t, mc).Connect(ctx)
	if err != nil {
		t.Fatalf("connect with the token: %v", err)
	}
	vals, err := queryRow(ctx, conn.(driver.QueryerContext), "SELECT CURRENT_USER(), (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version')")
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if vals[0] != "iam_probe@%" || !strings.HasPrefix(vals[1], "TLSv1.") {
		t.Errorf("session user %q over %q; want iam_probe@%% over TLS", vals[0], vals[1])
	}

	te := newTestEnv()
	target := &Target{Name: "orders", Host: s.Host(), Port: s.Port(), MySQL: mc, Resolver: &Resolver{},
		Modes: []string{event.ModeFresh}, Interval: time.Second, Timeout: 5 * time.Second}
	stream := NewStreams([]*Target{target}, te.env)[0]
	for i := 0; i < 3; i++ {
		ev := stream.ProbeOnce(ctx)
		if ev.DBProbe.Failure != nil {
			t.Fatalf("probe %d with the token failed: %+v %v", i, ev.DBProbe.Failure, ev.Error)
		}
		clk.Advance(time.Minute)
	}

	// Ten minutes on, dbprobe signs a new token: the server, which knows
	// only the first, refuses it.
	clk.Advance(7 * time.Minute)
	ev := stream.ProbeOnce(ctx)
	wantClass(t, ev, event.ClassAuth, event.PhaseConnect, 1045)

	// No credentials: iam_token, and no secret anywhere.
	bad := s.Config("iam_probe", "")
	bad.TLS = mc.TLS.Clone()
	if err := awsrds.Attach(bad, awsrds.NewTokenSource(s.Addr(), "eu-west-1", "iam_probe", failingCreds{}, clk.Now)); err != nil {
		t.Fatal(err)
	}
	target2 := *target
	target2.MySQL = bad
	ev = NewStreams([]*Target{&target2}, te.env)[0].ProbeOnce(ctx)
	wantClass(t, ev, event.ClassIAMToken, event.PhaseConnect, 0)
	if !strings.Contains(ev.Error.Message, "iam auth token") {
		t.Errorf("error message %q does not say the token failed", ev.Error.Message)
	}
	b, _ := json.Marshal(ev)
	for _, leak := range []string{token, "wJalrXUtnFEMI", "X-Amz-Signature"} {
		if strings.Contains(string(b), leak) || strings.Contains(te.log.String(), leak) {
			t.Errorf("event or log contains %q", leak)
		}
	}
}

func mustConnector(t *testing.T, mc *mysql.Config) driver.Connector {
	t.Helper()
	c, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenClock is the IAM token source's clock, moved by the test.
type tokenClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tokenClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *tokenClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
