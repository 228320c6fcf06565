package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/dbprobe/dbprobe/awsrds"
	"github.com/dbprobe/dbprobe/event"
)

// MySQL server error numbers that decide a class. Names follow the server's
// own (ER_*) so they can be looked up.
var serverClasses = map[uint16]string{
	1044: event.ClassAuth, // ER_DBACCESS_DENIED_ERROR
	1045: event.ClassAuth, // ER_ACCESS_DENIED_ERROR
	3118: event.ClassAuth, // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
	4151: event.ClassAuth, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
	1227: event.ClassAuth, // ER_SPECIFIC_ACCESS_DENIED_ERROR
	1142: event.ClassAuth, // ER_TABLEACCESS_DENIED_ERROR (missing grant on the heartbeat table)

	3032: event.ClassOffline, // ER_SERVER_OFFLINE_MODE

	1040: event.ClassTooManyConnections, // ER_CON_COUNT_ERROR
	1203: event.ClassTooManyConnections, // ER_TOO_MANY_USER_CONNECTIONS

	1290: event.ClassReadOnly, // ER_OPTION_PREVENTS_STATEMENT (--read-only)
	1792: event.ClassReadOnly, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	1836: event.ClassReadOnly, // ER_READ_ONLY_MODE (innodb_read_only)

	1317: event.ClassKilled, // ER_QUERY_INTERRUPTED
	1053: event.ClassKilled, // ER_SERVER_SHUTDOWN
	1927: event.ClassKilled, // ER_CONNECTION_KILLED (MariaDB)
	3169: event.ClassKilled, // ER_SESSION_WAS_KILLED (MySQL)
	4031: event.ClassKilled, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
}

// classify names the class of err (one of event.Classes), which happened in
// phase. ctx is the probe's context: once it has expired, whatever the driver
// reports (often a closed connection) is a consequence of dbprobe giving up,
// not the cause.
func classify(ctx context.Context, phase string, err error) (class string, number uint16) {
	if observerFault(err) {
		return event.ClassObserverFault, 0
	}
	var te *awsrds.TokenError
	if errors.As(err, &te) {
		return event.ClassIAMToken, 0
	}
	var re *ResultError
	if errors.As(err, &re) {
		return event.ClassResultMismatch, 0
	}
	if tlsFailure(err) {
		return event.ClassTLS, 0
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		if c, ok := serverClasses[me.Number]; ok {
			return c, me.Number
		}
		return event.ClassServerError, me.Number
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return event.ClassDNSNotFound, 0
		}
		return event.ClassDNSError, 0
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		switch {
		case opErr.Timeout() || errors.Is(err, context.DeadlineExceeded):
			return event.ClassConnectTimeout, 0
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
			errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET):
			return event.ClassConnectRefused, 0
		}
		return event.ClassOther, 0
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		if phase == event.PhaseDNS {
			return event.ClassDNSError, 0
		}
		return event.ClassTimeout, 0
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return event.ClassTimeout, 0
	}
	switch {
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return event.ClassConnLost, 0
	}
	return event.ClassOther, 0
}

// tlsFailure reports whether err is a failed TLS handshake or certificate
// check, or a server refusing TLS.
func tlsFailure(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		alert     tls.AlertError
	)
	return errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record) || errors.As(err, &alert) ||
		errors.Is(err, mysql.ErrNoTLS)
}

// localErrnos are failures of the observer's own machine: out of file
// descriptors (process or system), socket buffers, memory, or local ports.
// Whatever the database does, these say nothing about it.
var localErrnos = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL}

// observerFault reports whether err is the observer's fault: the probe
// could not be made for a local reason.
func observerFault(err error) bool {
	for _, errno := range localErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
