package report

import (
	"strings"

	"github.com/dbprobe/dbprobe/event"
)

// serverNamer names the servers of one target for people: by role where
// the target shows it, else as event.ServerName does.
type serverNamer struct {
	roles map[string]string // identity -> role
}

// serverNames learns the roles of tg's servers: from the rows of
// mysql.rds_topology (an endpoint whose first label is the server's
// instance id or hostname), from their names, and, for a Blue/Green
// deployment whose rows name no server, from the switchover itself: the
// server new connections left is blue, the one they moved to green.
func serverNames(tg *Target) serverNamer {
	n := serverNamer{roles: map[string]string{}}
	if tg == nil {
		return n
	}
	taken := map[string]bool{}
	claim := func(identity, role string) {
		if role == "" || taken[role] || n.roles[identity] != "" {
			return
		}
		n.roles[identity], taken[role] = role, true
	}
	for _, row := range tg.Topology {
		role, endpoint, ok := event.RoleOfTopology(row)
		if !ok {
			continue
		}
		label, _, _ := strings.Cut(endpoint, ".")
		for _, s := range tg.Servers {
			host, _, _ := strings.Cut(s.Hostname, ".")
			if strings.EqualFold(host, label) || strings.EqualFold(s.AuroraServerID, label) {
				claim(s.Identity, role)
			}
		}
	}
	for _, s := range tg.Servers {
		claim(s.Identity, event.RoleOfName(s.Hostname))
		claim(s.Identity, event.RoleOfName(s.AuroraServerID))
	}
	if c := tg.FirstCutover; c != nil && len(tg.BlueGreen) > 0 && c.From != nil && c.To != nil && !c.Rollback {
		claim(c.From.Identity, event.RoleBlue)
		claim(c.To.Identity, event.RoleGreen)
	}
	return n
}

// of is the display name of srv; empty for no server.
func (n serverNamer) of(srv *event.Server) string {
	if srv == nil {
		return ""
	}
	return event.ServerName(srv, n.roles[srv.Identity])
}

// ofSeen is the display name of a server of the target's list.
func (n serverNamer) ofSeen(s *ServerSeen) string {
	return n.of(&event.Server{Identity: s.Identity, Hostname: s.Hostname, Address: s.Address, AuroraServerID: s.AuroraServerID,
		ServerID: s.ServerID, Port: s.Port})
}

// text names srv with the address it answered on: "blue (10.0.0.1:3306)".
func (n serverNamer) text(srv *event.Server) string {
	if srv == nil {
		return "unknown server"
	}
	name := n.of(srv)
	if name == "" {
		name = "unidentified server"
	}
	if srv.Address != "" && srv.Address != name {
		name += " (" + srv.Address + ")"
	}
	return name
}

// staleOn words what a stale stream was still on, as StaleOn does.
func (n serverNamer) staleOn(reason string, srv *event.Server) string {
	if reason == StaleAddress && srv != nil && srv.Address != "" {
		return "address " + srv.Address
	}
	return "server " + n.text(srv)
}
