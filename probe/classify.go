package probe

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/event"
)

// Error classes. They are the contract users filter and alert on (error.type
// in events, the class label in metrics); docs/events.md explains each.
const (
	ClassDNSNotFound        = "dns_not_found"
	ClassDNSError           = "dns_error"
	ClassConnectRefused     = "connect_refused"
	ClassConnectTimeout     = "connect_timeout"
	ClassAuth               = "auth"
	ClassOffline            = "offline"
	ClassTooManyConnections = "too_many_connections"
	ClassReadOnly           = "read_only"
	ClassConnLost           = "conn_lost"
	ClassTimeout            = "timeout"
	ClassKilled             = "killed"
	ClassServerError        = "server_error"
	ClassSkipped            = "skipped"
	ClassOther              = "other"
)

// Classes lists every class, for documentation and for pre-creating metric
// series.
var Classes = []string{
	ClassDNSNotFound, ClassDNSError, ClassConnectRefused, ClassConnectTimeout, ClassAuth,
	ClassOffline, ClassTooManyConnections, ClassReadOnly, ClassConnLost, ClassTimeout,
	ClassKilled, ClassServerError, ClassSkipped, ClassOther,
}

// MySQL server error numbers that decide a class. Names follow the server's
// own (ER_*) so they can be looked up.
var serverClasses = map[uint16]string{
	1044: ClassAuth, // ER_DBACCESS_DENIED_ERROR
	1045: ClassAuth, // ER_ACCESS_DENIED_ERROR
	3118: ClassAuth, // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
	4151: ClassAuth, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
	1227: ClassAuth, // ER_SPECIFIC_ACCESS_DENIED_ERROR
	1142: ClassAuth, // ER_TABLEACCESS_DENIED_ERROR (missing grant on the heartbeat table)

	3032: ClassOffline, // ER_SERVER_OFFLINE_MODE

	1040: ClassTooManyConnections, // ER_CON_COUNT_ERROR
	1203: ClassTooManyConnections, // ER_TOO_MANY_USER_CONNECTIONS

	1290: ClassReadOnly, // ER_OPTION_PREVENTS_STATEMENT (--read-only)
	1792: ClassReadOnly, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	1836: ClassReadOnly, // ER_READ_ONLY_MODE (innodb_read_only)

	1317: ClassKilled, // ER_QUERY_INTERRUPTED
	1053: ClassKilled, // ER_SERVER_SHUTDOWN
	1927: ClassKilled, // ER_CONNECTION_KILLED (MariaDB)
	3169: ClassKilled, // ER_SESSION_WAS_KILLED (MySQL)
	4031: ClassKilled, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
}

// classify names the class of err, which happened in phase. deadline is the
// probe's context: once it has expired, whatever the driver reports (often a
// closed connection) is a consequence of dbprobe giving up, not the cause.
func classify(ctx context.Context, phase string, err error) (class string, number uint16) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		if c, ok := serverClasses[me.Number]; ok {
			return c, me.Number
		}
		return ClassServerError, me.Number
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return ClassDNSNotFound, 0
		}
		return ClassDNSError, 0
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		switch {
		case opErr.Timeout() || errors.Is(err, context.DeadlineExceeded):
			return ClassConnectTimeout, 0
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
			errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET):
			return ClassConnectRefused, 0
		}
		return ClassOther, 0
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		if phase == event.PhaseDNS {
			return ClassDNSError, 0
		}
		return ClassTimeout, 0
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout, 0
	}
	switch {
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return ClassConnLost, 0
	}
	return ClassOther, 0
}
