package event

import (
	"net"
	"strconv"
	"strings"
)

// Roles of a server in a Blue/Green deployment, as people call them.
const (
	RoleBlue    = "blue"
	RoleGreen   = "green"
	RoleOldBlue = "old blue"
)

// ShortName is how dbprobe names a server to people, everywhere: the
// report, the status page, the terminal view and the server_info metric.
// It is the server's role when its names show one (RoleOfName), else
// hostname:port (server_id). A report, which sees the whole switchover,
// names servers by role through ServerName where the names alone do not.
func (s *Server) ShortName() string { return ServerName(s, "") }

// ServerName names srv for people: role when known (one of the Role
// constants), else the role its names show, else its Aurora instance id,
// else hostname:port (server_id).
func ServerName(s *Server, role string) string {
	if s == nil {
		return ""
	}
	if role != "" {
		return role
	}
	for _, n := range []string{s.AuroraServerID, s.Hostname} {
		if r := RoleOfName(n); r != "" {
			return r
		}
	}
	if s.AuroraServerID != "" {
		return s.AuroraServerID
	}
	var b strings.Builder
	b.WriteString(s.Hostname)
	if b.Len() == 0 && s.Address != "" && s.Port != nil {
		// A server that does not say its hostname is named by the
		// address it answered on.
		if host, _, err := net.SplitHostPort(s.Address); err == nil {
			b.WriteString(host)
		}
	}
	if s.Port != nil {
		if b.Len() == 0 {
			b.WriteString("?")
		}
		b.WriteString(":" + strconv.FormatInt(*s.Port, 10))
	}
	if s.ServerID != nil {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("(" + strconv.FormatInt(*s.ServerID, 10) + ")")
	}
	if b.Len() == 0 {
		if s.Address != "" {
			return s.Address
		}
		return s.Identity
	}
	return b.String()
}

// RoleOfName is the Blue/Green role a DNS name or instance name shows, ""
// when it shows none. RDS names a green instance "NAME-green-SUFFIX" and,
// after a switchover, the old blue one "NAME-old1"; labs and tests often
// name their servers with a "blue" or "green" word.
func RoleOfName(name string) string {
	label, _, _ := strings.Cut(strings.ToLower(name), ".")
	words := strings.FieldsFunc(label, func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		switch {
		case w == "green":
			return RoleGreen
		case w == "blue":
			return RoleBlue
		case i > 0 && strings.HasPrefix(w, "old") && len(w) > 3 && strings.Trim(w[3:], "0123456789") == "":
			return RoleOldBlue
		}
	}
	return ""
}

// RoleOfTopology is the role of a row of mysql.rds_topology as
// BlueGreen.Rows holds it ("SOURCE status endpoint:port"), with the
// row's endpoint name; ok is false for a row of another shape.
func RoleOfTopology(row string) (role, endpoint string, ok bool) {
	f := strings.Fields(row)
	if len(f) != 3 {
		return "", "", false
	}
	host := f[2]
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	switch strings.ToUpper(f[0]) {
	case "SOURCE":
		return RoleBlue, host, true
	case "TARGET":
		return RoleGreen, host, true
	}
	return "", "", false
}
