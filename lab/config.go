package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ConfigOptions shape the dbprobe configuration written for a lab.
type ConfigOptions struct {
	// Interval is the probe interval; default 100ms.
	Interval time.Duration
	// JournalDir is where dbprobe keeps its journal and writes its report;
	// default <lab dir>/dbprobe-data.
	JournalDir string
	// HTTPListen is dbprobe's HTTP address (metrics, live report); empty
	// turns it off.
	HTTPListen string
	// NoBlueGreen leaves Blue/Green awareness and green's replication lag
	// out, as for a failover, a reboot or a proxy, where no Blue/Green
	// deployment exists.
	NoBlueGreen bool
}

// ProbeTimeout is the probe timeout of the configuration written for a
// probe interval: long enough that a probe on a busy machine does not time
// out (a spurious window), short enough not to pile up probes.
func ProbeTimeout(interval time.Duration) time.Duration {
	return max(10*interval, 2*time.Second)
}

// DefaultInterval is the lab's probe interval.
const DefaultInterval = 100 * time.Millisecond

// PasswordFile is where the probe user's password is written, for
// configurations to read (password_file) instead of holding it.
func (l *Lab) PasswordFile() string { return filepath.Join(l.dir, "probe.password") }

// WriteConfig writes a dbprobe configuration for the lab to path: the
// cluster endpoint in both modes with the write probe, Blue/Green awareness
// and green for replication lag, resolved through the lab's DNS server. The
// password stays in PasswordFile.
func (l *Lab) WriteConfig(path string, o ConfigOptions) error {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.JournalDir == "" {
		o.JournalDir = filepath.Join(l.dir, "dbprobe-data")
	}
	if err := os.WriteFile(l.PasswordFile(), []byte(l.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	timeout := ProbeTimeout(o.Interval)
	var b strings.Builder
	fmt.Fprintf(&b, `# dbprobe configuration for the switchover lab in %s.
# The lab prints the same addresses; docs/lab.md explains every part.
interval: %s
timeout: %s
dns:
  server: %q      # the lab's DNS server: the endpoint name lives there
targets:
  - name: %s
    host: %s
    port: %d
    user: %s
    password_file: %q
    database: %s
    modes: [fresh, pooled]
    write:
      table: %s
`, l.dir, o.Interval, timeout, l.dns.Addr(),
		TargetName, EndpointName, l.port, ProbeUser, l.PasswordFile(), Database, HeartbeatName)
	if !o.NoBlueGreen {
		fmt.Fprintf(&b, `    bluegreen: true
    green:                # replication lag, read from green by address
      host: %s
      port: %d
      user: %s
      password_file: %q
      database: %s
`, l.green.Host(), l.green.Port(), ProbeUser, l.PasswordFile(), Database)
	}
	fmt.Fprintf(&b, `sinks:
  journal:
    dir: %q
http:
  listen: %q
`, o.JournalDir, o.HTTPListen)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("lab: write dbprobe config: %w", err)
	}
	return nil
}
