package event

import (
	"strconv"
	"strings"
)

// ShortName is how dbprobe names a server to a person watching: the role
// when one is known (Aurora's server id names its instance), else
// hostname:port (server_id). Every live view names servers through it, so a
// better name is a change in one place.
func (s *Server) ShortName() string {
	if s == nil {
		return ""
	}
	if s.AuroraServerID != "" {
		return s.AuroraServerID
	}
	var b strings.Builder
	b.WriteString(s.Hostname)
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
