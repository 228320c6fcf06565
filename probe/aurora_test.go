package probe

import (
	"context"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
)

// TestAuroraRole probes two MariaDB servers standing in for the instances
// of an Aurora cluster. Aurora tells its instances by @@aurora_server_id
// and a reader by innodb_read_only=ON, which (as on Aurora, where a demoted
// writer restarts as a reader) MariaDB only takes at startup. MariaDB has
// no aurora_server_id, so the probe reads report_host in its place
// (--report-host is the instance name); everything else is the probe's
// real path.
func TestAuroraRole(t *testing.T) {
	writer := mariadbtest.Start(t, mariadb.Options{Args: []string{"--report-host=orders-instance-1"}})
	reader := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.2", Args: []string{"--report-host=orders-instance-2", "--innodb-read-only=1"}})
	plain := mariadbtest.Start(t, mariadb.Options{Host: "127.0.0.3"})
	for _, s := range []*mariadb.Server{writer, reader, plain} {
		mariadbtest.CreateUser(t, s, probeUser, probePassword)
	}
	tests := []struct {
		name               string
		srv                *mariadb.Server
		aurora             bool
		identity, wantRole string
	}{
		{"writer", writer, true, "aurora:orders-instance-1", event.RoleWriter},
		{"reader", reader, true, "aurora:orders-instance-2", event.RoleReader},
		{"not aurora", plain, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := &Target{Name: "orders", Host: tt.srv.Host(), Port: tt.srv.Port(), MySQL: tt.srv.Config(probeUser, probePassword),
				Resolver: &Resolver{}, Modes: []string{event.ModeFresh, event.ModePooled}, Interval: time.Second, Timeout: 5 * time.Second}
			if tt.aurora {
				target.auroraIDVar = "report_host"
			}
			for _, st := range NewStreams([]*Target{target}, newTestEnv().env) {
				// Twice: discovery, then the cached SELECT of the variables.
				for i := 0; i < 2; i++ {
					ev := st.ProbeOnce(context.Background())
					srv := ev.DBProbe.Server
					if ev.DBProbe.Failure != nil || srv == nil {
						t.Fatalf("probe failed: %+v %v", ev.DBProbe.Failure, ev.Error)
					}
					if srv.Role != tt.wantRole || (tt.identity != "" && srv.Identity != tt.identity) {
						t.Errorf("%s probe %d: identity %q role %q; want %q %q", st.Key(), i, srv.Identity, srv.Role, tt.identity, tt.wantRole)
					}
				}
			}
		})
	}
}
