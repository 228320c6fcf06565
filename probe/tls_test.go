package probe

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/internal/testca"
	"github.com/dbprobe/dbprobe/lab/mariadb"
)

// TestTLSTargets probes a MariaDB serving a certificate for
// "orders.db.test" from a throwaway CA, configured as DSN and host targets
// with the tls block: the CA file and server_name make it work; a missing
// CA, the wrong name, or a server without TLS fail as class tls.
func TestTLSTargets(t *testing.T) {
	ca := testca.New(t, "dbprobe test CA")
	other := testca.New(t, "some other CA")
	s := startServer(t, mariadb.Options{Args: ca.MariaDBArgs(t, "orders.db.test")})
	plain := startServer(t, mariadb.Options{Host: "127.0.0.2"})
	dsn := func(srv *mariadb.Server) string {
		return fmt.Sprintf("%s:%s@tcp(%s)/", probeUser, probePassword, srv.Addr())
	}
	tests := []struct {
		name, target string
		srv          *mariadb.Server
		wantClass    string
	}{
		{"dsn with ca_file and server_name", `{dsn: "` + dsn(s) + `", tls: {ca_file: ` + ca.CertFile + `, server_name: orders.db.test}}`, s, ""},
		{"host with ca_file and server_name", fmt.Sprintf(`{host: %s, port: %d, user: %s, password: "%s", tls: {ca_file: %s, server_name: orders.db.test}}`,
			s.Host(), s.Port(), probeUser, probePassword, ca.CertFile), s, ""},
		{"name the certificate lacks", `{dsn: "` + dsn(s) + `", tls: {ca_file: ` + ca.CertFile + `}}`, s, event.ClassTLS},
		{"untrusted CA", `{dsn: "` + dsn(s) + `", tls: {ca_file: ` + other.CertFile + `, server_name: orders.db.test}}`, s, event.ClassTLS},
		{"server without TLS", `{dsn: "` + dsn(plain) + `", tls: {ca_file: ` + ca.CertFile + `}}`, plain, event.ClassTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("targets:\n  - "+tt.target[:1]+"name: orders, "+tt.target[1:]+"\n"), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			host, port := cfg.Targets[0].HostPort()
			target := &Target{Name: "orders", Host: host, Port: port, MySQL: cfg.Targets[0].MySQL(), Resolver: &Resolver{},
				Modes: []string{event.ModeFresh}, Interval: time.Second, Timeout: 5 * time.Second}
			ev := NewStreams([]*Target{target}, newTestEnv().env)[0].ProbeOnce(context.Background())
			if tt.wantClass == "" {
				if ev.DBProbe.Failure != nil {
					t.Fatalf("probe failed: %+v %v", ev.DBProbe.Failure, ev.Error)
				}
				if ev.DBProbe.Server == nil || ev.DBProbe.Server.Port == nil || int(*ev.DBProbe.Server.Port) != tt.srv.Port() {
					t.Errorf("answered by %+v, want the server on port %d", ev.DBProbe.Server, tt.srv.Port())
				}
				return
			}
			wantClass(t, ev, tt.wantClass, event.PhaseConnect, 0)
		})
	}
}
