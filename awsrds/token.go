// Package awsrds holds what dbprobe asks of AWS about an RDS or Aurora
// database: IAM authentication tokens used as the password of fresh
// connections, the identity those tokens are signed with, and RDS's own
// events polled beside the measurement.
package awsrds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/go-sql-driver/mysql"
)

// Token lifetimes. AWS accepts a token for 15 minutes after signing; dbprobe
// signs a new one after two thirds of that, so a token in use always has
// minutes left even on a probe that waited for its turn.
const (
	TokenLifetime = 15 * time.Minute
	renewFraction = 3 // renew after lifetime*2/renewFraction
)

// signingName and emptyPayloadHash are what feature/rds/auth signs with: the
// token is a SigV4-presigned "connect" request to the endpoint.
const (
	signingName      = "rds-db"
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// While a still valid token is in use, a renewal may take at most
// maxRenewBudget (and half the caller's remaining deadline), and a failed one
// is retried after renewRetry.
const (
	maxRenewBudget = time.Second
	renewRetry     = 30 * time.Second
)

func renewBudget(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return min(maxRenewBudget, time.Until(dl)/2)
	}
	return maxRenewBudget
}

// TokenError is a failure to make an IAM token: no credentials, expired
// credentials, STS unreachable. It is never the database's fault, which is
// why the probe gives it a class of its own.
type TokenError struct{ Err error }

func (e *TokenError) Error() string { return "iam auth token: " + e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// TokenSource makes IAM authentication tokens for one database user at one
// endpoint, and hands out the same token until it is due for renewal. Its
// methods are safe for concurrent use.
type TokenSource struct {
	endpoint string // host:port as the application names it, which the token is signed for
	user     string
	region   string
	creds    aws.CredentialsProvider
	now      func() time.Time
	// Logger hears of renewals that fail while the token in hand still
	// works, once per streak: probes go on, so nothing else would say that
	// AWS credentials are failing before the token expires. Set it before
	// the first Token call; nil logs nothing.
	Logger *slog.Logger

	// signing (capacity 1) is held by the caller that signs. It is a
	// channel, not a mutex, so that a caller waiting while another signs
	// (credentials can take a round trip to STS) gives up at its deadline.
	signing chan struct{}

	mu      sync.Mutex // guards the fields below; never held across I/O
	token   string
	renewAt time.Time
	expires time.Time
	lastErr error // last failed renewal while an older token was still in use
}

// NewTokenSource returns a source of tokens for user at endpoint
// ("host:port") in region, signed with creds. now is the clock (nil: the
// system clock).
func NewTokenSource(endpoint, region, user string, creds aws.CredentialsProvider, now func() time.Time) *TokenSource {
	if now == nil {
		now = time.Now
	}
	return &TokenSource{endpoint: endpoint, user: user, region: region, creds: creds, now: now, signing: make(chan struct{}, 1)}
}

// Token returns a token valid for at least a while. A renewal that fails
// while the previous token is still valid keeps the previous one: AWS would
// still accept it, and a slow STS must not look like a database outage.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	if tok, ok := s.current(s.now(), false); ok {
		return tok, nil
	}
	// One caller signs at a time; the others wait for it, each no longer
	// than its own deadline.
	select {
	case s.signing <- struct{}{}:
	case <-ctx.Done():
		if tok, ok := s.current(s.now(), true); ok {
			return tok, nil
		}
		return "", &TokenError{Err: fmt.Errorf("waiting for a token being signed: %w", ctx.Err())}
	}
	defer func() { <-s.signing }()
	now := s.now()
	if tok, ok := s.current(now, false); ok {
		return tok, nil // renewed while this caller waited
	}
	tok, valid := s.current(now, true)
	sctx := ctx
	if valid {
		// A token in hand still works: renewing must not eat the probe's
		// deadline, or a slow STS would show as a slow database.
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, renewBudget(ctx))
		defer cancel()
	}
	signed, expires, err := s.sign(sctx, now)
	s.mu.Lock()
	prevErr, until := s.lastErr, s.expires
	switch {
	case err != nil && valid:
		s.lastErr = err
		// Try again later, not on every probe, while the old token lasts.
		s.renewAt = now.Add(min(renewRetry, s.expires.Sub(now)/2))
		signed = tok
	case err == nil:
		s.token, s.expires, s.lastErr = signed, expires, nil
		s.renewAt = now.Add(expires.Sub(now) * (renewFraction - 1) / renewFraction)
	}
	s.mu.Unlock()
	switch {
	case err != nil && valid && prevErr == nil && s.Logger != nil:
		s.Logger.Warn("renewing the IAM token failed; the current token stays in use until it expires", "endpoint", s.endpoint,
			"user", s.user, "expires", until.UTC().Format(time.RFC3339), "err", err)
	case err == nil && prevErr != nil && s.Logger != nil:
		s.Logger.Info("renewing the IAM token works again", "endpoint", s.endpoint, "user", s.user)
	}
	if err != nil && !valid {
		return "", &TokenError{Err: err}
	}
	return signed, nil
}

// current returns the token in hand if it is not yet due for renewal or,
// with anyValid, if AWS still accepts it.
func (s *TokenSource) current(now time.Time, anyValid bool) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	due := s.renewAt
	if anyValid {
		due = s.expires
	}
	return s.token, s.token != "" && now.Before(due)
}

// RenewalError is the last renewal that failed while an older, still valid
// token stayed in use; nil once a renewal succeeds.
func (s *TokenSource) RenewalError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// sign builds the token as feature/rds/auth.BuildAuthToken does, but at the
// source's clock, so tests (and nothing else) can pin the time.
func (s *TokenSource) sign(ctx context.Context, now time.Time) (string, time.Time, error) {
	if s.creds == nil {
		return "", time.Time{}, errors.New("no AWS credentials provider")
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	expires := now.Add(TokenLifetime)
	if creds.CanExpire {
		if !now.Before(creds.Expires) {
			return "", time.Time{}, fmt.Errorf("AWS credentials from %s expired at %s", creds.Source, creds.Expires.UTC().Format(time.RFC3339))
		}
		if creds.Expires.Before(expires) {
			// A token is only as good as the credentials that signed it.
			expires = creds.Expires
		}
	}
	q := url.Values{"Action": {"connect"}, "DBUser": {s.user}, "X-Amz-Expires": {"900"}}
	req, err := http.NewRequest(http.MethodGet, "https://"+s.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return "", time.Time{}, err
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptyPayloadHash, signingName, s.region, now.UTC())
	if err != nil {
		return "", time.Time{}, err
	}
	return strings.TrimPrefix(signed, "https://"), expires, nil
}

// BeforeConnect sets a token as the password of the connection about to be
// opened: every new connection gets the current token, so a fresh probe
// every tick reuses one token for minutes rather than signing per probe.
func (s *TokenSource) BeforeConnect(ctx context.Context, cfg *mysql.Config) error {
	tok, err := s.Token(ctx)
	if err != nil {
		return err
	}
	cfg.Passwd = tok
	return nil
}

// Attach makes every connection opened with cfg (or a clone of it)
// authenticate with a token from s, sent in clear text as IAM
// authentication requires; the caller has made sure cfg uses TLS.
func Attach(cfg *mysql.Config, s *TokenSource) error {
	cfg.AllowCleartextPasswords = true
	cfg.Passwd = ""
	return cfg.Apply(mysql.BeforeConnect(s.BeforeConnect))
}

// Endpoint returns the host:port the tokens are signed for.
func (s *TokenSource) Endpoint() string { return s.endpoint }

// Region returns the region the tokens are signed for.
func (s *TokenSource) Region() string { return s.region }

// RegionFromHost guesses the region from an RDS endpoint name such as
// mydb.cluster-abc.eu-west-1.rds.amazonaws.com; "" when host is not one.
func RegionFromHost(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, suffix := range []string{".rds.amazonaws.com", ".rds.amazonaws.com.cn"} {
		if rest, ok := strings.CutSuffix(host, suffix); ok {
			if i := strings.LastIndexByte(rest, '.'); i >= 0 {
				return rest[i+1:]
			}
		}
	}
	return ""
}
