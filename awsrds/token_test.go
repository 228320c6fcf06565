package awsrds

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"
)

const (
	testEndpoint = "orders.cluster-abc.eu-west-1.rds.amazonaws.com:3306"
	testKey      = "AKIAIOSFODNN7EXAMPLE"
	testSecret   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingCreds counts retrievals and fails while err is set.
type countingCreds struct {
	mu    sync.Mutex
	n     int
	err   error
	creds aws.Credentials
}

func (c *countingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.err != nil {
		return aws.Credentials{}, c.err
	}
	return c.creds, nil
}

func (c *countingCreds) fail(err error) { c.mu.Lock(); c.err = err; c.mu.Unlock() }

func staticCreds() *countingCreds {
	return &countingCreds{creds: aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret, Source: "test"}}
}

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func TestTokenDeterministic(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	tok, err := NewTokenSource(testEndpoint, "eu-west-1", "probe", staticCreds(), clk.now).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := NewTokenSource(testEndpoint, "eu-west-1", "probe", staticCreds(), clk.now).Token(ctx)
	if tok != again {
		t.Errorf("same inputs, different tokens:\n%s\n%s", tok, again)
	}
	host, rawQuery, ok := strings.Cut(tok, "?")
	if !ok || host != testEndpoint {
		t.Fatalf("token %q does not start with %s?", tok, testEndpoint)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Action":              "connect",
		"DBUser":              "probe",
		"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
		"X-Amz-Credential":    testKey + "/20260314/eu-west-1/rds-db/aws4_request",
		"X-Amz-Date":          "20260314T150926Z",
		"X-Amz-Expires":       "900",
		"X-Amz-SignedHeaders": "host",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(q.Get("X-Amz-Signature")) != 64 {
		t.Errorf("X-Amz-Signature = %q, want 64 hex digits", q.Get("X-Amz-Signature"))
	}
	other, _ := NewTokenSource(testEndpoint, "eu-west-1", "someone_else", staticCreds(), clk.now).Token(ctx)
	if sig(t, other) == sig(t, tok) {
		t.Error("a token for another user has the same signature")
	}
}

// TestTokenMatchesSDK checks the token is byte for byte what
// feature/rds/auth.BuildAuthToken makes at the same instant, so dbprobe's
// clock-injectable signing cannot drift from AWS's reference.
func TestTokenMatchesSDK(t *testing.T) {
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(testKey, testSecret, "session-token")
	want, err := auth.BuildAuthToken(ctx, testEndpoint, "eu-west-1", "probe", creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BuildAuthToken: %s", want)
	_, rawQuery, _ := strings.Cut(want, "?")
	q, _ := url.ParseQuery(rawQuery)
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewTokenSource(testEndpoint, "eu-west-1", "probe", creds, func() time.Time { return at }).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("token differs from BuildAuthToken's:\n got %s\nwant %s", got, want)
	}
}

func sig(t *testing.T, tok string) string {
	t.Helper()
	_, rawQuery, _ := strings.Cut(tok, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	return q.Get("X-Amz-Signature")
}

func TestTokenCachedAndRenewed(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	creds := staticCreds()
	s := NewTokenSource(testEndpoint, "eu-west-1", "probe", creds, clk.now)
	first, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One probe a second for the first ten minutes: one token.
	for i := 0; i < 599; i++ {
		clk.add(time.Second)
		tok, err := s.Token(ctx)
		if err != nil || tok != first {
			t.Fatalf("after %ds: token changed (err %v)", i+1, err)
		}
	}
	if creds.n != 1 {
		t.Errorf("credentials retrieved %d times for one token, want 1", creds.n)
	}
	clk.add(time.Second) // 10 minutes: two thirds of the lifetime
	second, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Error("token not renewed after 10 minutes")
	}
	if !strings.Contains(second, "X-Amz-Date=20260314T151926Z") {
		t.Errorf("renewed token not signed at the clock's time: %s", second)
	}
}

func TestTokenRenewalFailure(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	creds := staticCreds()
	s := NewTokenSource(testEndpoint, "eu-west-1", "probe", creds, clk.now)
	var logBuf bytes.Buffer
	s.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	first, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stsDown := errors.New("dial tcp: sts.amazonaws.com: i/o timeout")
	creds.fail(stsDown)
	clk.add(11 * time.Minute)
	tok, err := s.Token(ctx)
	if err != nil || tok != first {
		t.Fatalf("renewal failed with a valid token in hand: got err %v, same token %v; want the old token", err, tok == first)
	}
	if !errors.Is(s.RenewalError(), stsDown) {
		t.Errorf("RenewalError = %v, want %v", s.RenewalError(), stsDown)
	}
	// Not asked again on every probe while the old token lasts.
	n := creds.n
	clk.add(20 * time.Second)
	if tok, err := s.Token(ctx); err != nil || tok != first || creds.n != n {
		t.Errorf("20s after a failed renewal: err %v, same token %v, %d more retrievals; want the old token and none", err, tok == first, creds.n-n)
	}
	clk.add(40 * time.Second) // past the retry: fails again, same streak
	if tok, err := s.Token(ctx); err != nil || tok != first || creds.n != n+1 {
		t.Errorf("a minute after a failed renewal: err %v, same token %v, %d more retrievals; want the old token and one", err, tok == first, creds.n-n)
	}
	if logs := logBuf.String(); strings.Count(logs, "renewing the IAM token failed") != 1 || !strings.Contains(logs, "sts.amazonaws.com: i/o timeout") {
		t.Errorf("renewal failures logged as\n%s\nwant once per streak, with the reason", logs)
	}
	clk.add(3 * time.Minute) // 15 minutes: the old token has expired
	_, err = s.Token(ctx)
	var te *TokenError
	if !errors.As(err, &te) || !errors.Is(err, stsDown) {
		t.Fatalf("Token after expiry = %v, want a *TokenError wrapping %v", err, stsDown)
	}
	creds.fail(nil)
	if _, err := s.Token(ctx); err != nil || s.RenewalError() != nil {
		t.Errorf("after credentials came back: err %v, RenewalError %v", err, s.RenewalError())
	}
	if !strings.Contains(logBuf.String(), "renewing the IAM token works again") {
		t.Errorf("recovery not logged:\n%s", logBuf.String())
	}
}

func TestTokenFollowsCredentialExpiry(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	creds := staticCreds()
	creds.creds.CanExpire, creds.creds.Expires = true, t0.Add(6*time.Minute)
	s := NewTokenSource(testEndpoint, "eu-west-1", "probe", creds, clk.now)
	first, _ := s.Token(ctx)
	clk.add(3*time.Minute + 59*time.Second)
	if tok, _ := s.Token(ctx); tok != first {
		t.Error("renewed before two thirds of the credentials' remaining life")
	}
	clk.add(time.Second)
	creds.creds.Expires = t0.Add(time.Hour)
	if tok, _ := s.Token(ctx); tok == first {
		t.Error("not renewed at two thirds of the credentials' remaining life")
	}
	clk.add(2 * time.Hour)
	_, err := s.Token(ctx)
	var te *TokenError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Token with expired credentials = %v, want a *TokenError saying they expired", err)
	}
}

func TestNoCredentials(t *testing.T) {
	_, err := NewTokenSource(testEndpoint, "eu-west-1", "probe", nil, nil).Token(context.Background())
	var te *TokenError
	if !errors.As(err, &te) {
		t.Errorf("Token without credentials = %v, want a *TokenError", err)
	}
}

func TestRegionFromHost(t *testing.T) {
	for host, want := range map[string]string{
		"orders.cluster-abc.eu-west-1.rds.amazonaws.com":     "eu-west-1",
		"orders.cluster-ro-abc.us-east-2.rds.amazonaws.com.": "us-east-2",
		"db.abc.cn-north-1.rds.amazonaws.com.cn":             "cn-north-1",
		"db.example.com":                                     "",
		"10.0.0.1":                                           "",
	} {
		if got := RegionFromHost(host); got != want {
			t.Errorf("RegionFromHost(%q) = %q, want %q", host, got, want)
		}
	}
}

// slowCreds blocks until its context ends, as an unreachable STS does, and
// records how long it was given.
type slowCreds struct {
	countingCreds
	budget time.Duration
}

func (c *slowCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c.mu.Lock()
	c.n++
	slow := c.n > 1
	c.mu.Unlock()
	if !slow {
		return c.creds, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		c.budget = time.Until(dl)
	}
	<-ctx.Done()
	return aws.Credentials{}, ctx.Err()
}

// TestSlowRenewalKeepsTheProbesDeadline checks that renewing while the old
// token is still valid takes only a small part of the probe's deadline, so
// an unreachable STS never makes a probe time out.
func TestSlowRenewalKeepsTheProbesDeadline(t *testing.T) {
	clk := &clock{t: t0}
	creds := &slowCreds{countingCreds: *staticCreds()}
	s := NewTokenSource(testEndpoint, "eu-west-1", "probe", creds, clk.now)
	first, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clk.add(11 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := s.Token(ctx)
	if err != nil || tok != first {
		t.Fatalf("slow renewal: err %v, same token %v; want the old token", err, tok == first)
	}
	if creds.budget <= 0 || creds.budget > maxRenewBudget {
		t.Errorf("renewal was given %v of the probe's 10s; want at most %v", creds.budget, maxRenewBudget)
	}
	if ctx.Err() != nil {
		t.Error("the probe's own deadline passed during the renewal")
	}
}

// blockingCreds blocks every retrieval until release is closed, saying on
// entered that one has started.
type blockingCreds struct {
	entered chan struct{}
	release chan struct{}
}

func (c *blockingCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c.entered <- struct{}{}
	<-c.release
	return aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret, Source: "test"}, nil
}

// A probe waiting for another probe's slow token signing still ends at its
// own deadline: the wait for the source is I/O like any other.
func TestTokenWaitHonoursContext(t *testing.T) {
	creds := &blockingCreds{entered: make(chan struct{}, 1), release: make(chan struct{})}
	src := NewTokenSource(testEndpoint, "eu-west-1", "probe", creds, (&clock{t: t0}).now)
	first := make(chan error, 1)
	go func() {
		_, err := src.Token(context.Background())
		first <- err
	}()
	<-creds.entered // the first caller holds the source, waiting for AWS
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	second := make(chan error, 1)
	go func() {
		_, err := src.Token(ctx)
		second <- err
	}()
	select {
	case err := <-second:
		var te *TokenError
		if !errors.As(err, &te) || !errors.Is(err, context.Canceled) {
			t.Errorf("second caller: got %v, want a TokenError wrapping context.Canceled", err)
		}
	case <-time.After(30 * time.Second): // bounds a hung test, measures nothing
		t.Error("a caller whose context ended still waits for another caller's signing")
	}
	close(creds.release)
	if err := <-first; err != nil {
		t.Errorf("first caller: %v", err)
	}
}
