package event

import "testing"

func TestServerName(t *testing.T) {
	port, id := int64(3306), int64(101)
	for _, c := range []struct {
		srv  *Server
		role string
		want string
	}{
		{&Server{Hostname: "ip-10-0-0-1", Port: &port, ServerID: &id}, "", "ip-10-0-0-1:3306 (101)"},
		{&Server{Hostname: "ip-10-0-0-1", Port: &port, ServerID: &id}, RoleGreen, "green"},
		{&Server{AuroraServerID: "orders-green-abc123", Port: &port}, "", "green"},
		{&Server{AuroraServerID: "orders-instance-1-old1", Port: &port}, "", "old blue"},
		{&Server{AuroraServerID: "orders-instance-1", Port: &port}, "", "orders-instance-1"},
		{&Server{Hostname: "orders-blue.lab", Port: &port}, "", "blue"},
		// "bluebird" is not the word blue; an "old" first word is no suffix.
		{&Server{Hostname: "bluebird", Port: &port}, "", "bluebird:3306"},
		{&Server{Hostname: "old1-db", Port: &port}, "", "old1-db:3306"},
		{&Server{Address: "10.0.0.1:3306"}, "", "10.0.0.1:3306"},
		{&Server{Address: "10.0.0.1:3306", Port: &port, ServerID: &id}, "", "10.0.0.1:3306 (101)"},
		{nil, "", ""},
	} {
		if got := ServerName(c.srv, c.role); got != c.want {
			t.Errorf("ServerName(%+v, %q) = %q, want %q", c.srv, c.role, got, c.want)
		}
	}
}

func TestRoleOfTopology(t *testing.T) {
	for _, c := range []struct{ row, role, endpoint string }{
		{"SOURCE AVAILABLE orders.cluster-x.eu-west-1.rds.amazonaws.com:3306", RoleBlue, "orders.cluster-x.eu-west-1.rds.amazonaws.com"},
		{"TARGET SWITCHOVER_IN_PROGRESS orders-green-abc.cluster-x:3306", RoleGreen, "orders-green-abc.cluster-x"},
		{"READER AVAILABLE x:3306", "", ""},
		{"SOURCE AVAILABLE", "", ""},
	} {
		role, ep, _ := RoleOfTopology(c.row)
		if role != c.role || ep != c.endpoint {
			t.Errorf("RoleOfTopology(%q) = %q, %q; want %q, %q", c.row, role, ep, c.role, c.endpoint)
		}
	}
}
