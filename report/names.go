package report

import "github.com/dbprobe/dbprobe/event"

// serverNamer names the servers of one target for people (ServerName).
type serverNamer struct {
	tg *Target
}

func serverNames(tg *Target) serverNamer { return serverNamer{tg: tg} }

// of is the display name of srv; empty for no server.
func (n serverNamer) of(srv *event.Server) string {
	if srv == nil {
		return ""
	}
	return srv.ShortName()
}
