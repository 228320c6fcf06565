package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/awsrds/rdsfake"
)

const (
	testAccessKey = "AKIAIOSFODNN7EXAMPLE"
	testSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// fakeSTS answers GetCallerIdentity as STS does (query protocol, XML).
func fakeSTS(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "GetCallerIdentity" || !strings.Contains(r.Header.Get("Authorization"), testAccessKey) {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/dbprobe/i-0abc</Arn>
    <UserId>AROAEXAMPLE:i-0abc</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCheckShowsIAMIdentity checks that `dbprobe check` says which AWS
// identity signs a target's IAM tokens, and for which region, using STS
// when it answers and the credential source when it does not, never the
// secret key.
func TestCheckShowsIAMIdentity(t *testing.T) {
	sts := fakeSTS(t)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	for _, tt := range []struct{ name, stsURL, want string }{
		{"sts answers", sts.URL, "signed as arn:aws:sts::123456789012:assumed-role/dbprobe/i-0abc"},
		{"sts down", downURL, "signed as credentials from EnvConfigCredentials, access key AKIAIOSF****"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
			t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
			t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
			t.Setenv("AWS_SESSION_TOKEN", "")
			t.Setenv("AWS_REGION", "")
			t.Setenv("AWS_PROFILE", "")
			t.Setenv("AWS_ENDPOINT_URL_STS", tt.stsURL)
			t.Setenv("AWS_MAX_ATTEMPTS", "1")
			cfg := writeConfig(t, `
targets:
  - name: orders
    host: 127.0.0.1
    port: 1
    user: iam_probe
    auth: iam
    tls: {}
    aws: {region: eu-west-1}
sinks: {journal: {dir: `+filepath.Join(dir, "journal")+`}}
`)
			te := newEnv(nil)
			err := dispatch(context.Background(), []string{"check", "--config", cfg}, te.env)
			out := te.stdout.String()
			if err == nil {
				t.Errorf("check passed against a closed port:\n%s", out)
			}
			if !strings.Contains(out, "tokens for iam_probe@127.0.0.1:1 in eu-west-1, "+tt.want) {
				t.Errorf("check output does not say %q:\n%s", tt.want, out)
			}
			if strings.Contains(out+te.stderr.String(), testSecretKey) || strings.Contains(out, "X-Amz-Signature") {
				t.Errorf("check output leaks a secret:\n%s", out)
			}
		})
	}
}

// TestCheckPollsAWSEvents checks that `dbprobe check` asks AWS for a
// target's events once, through a local fake of the RDS API, and warns
// (without failing the check) when AWS refuses.
func TestCheckPollsAWSEvents(t *testing.T) {
	fake := rdsfake.New(t, testAccessKey)
	fake.Add("db-cluster", "orders", time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), "Completed failover to DB instance: orders-2")
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
	t.Setenv("AWS_ENDPOINT_URL_RDS", fake.URL)
	cfg := writeConfig(t, `
targets:
  - {name: orders, host: 127.0.0.1, port: 1, user: probe, aws: {region: eu-west-1}, aws_events: {cluster: orders}}
sinks: {journal: {dir: `+filepath.Join(dir, "journal")+`}}
`)
	for _, failing := range []bool{false, true} {
		fake.SetFailing(failing)
		te := newEnv(nil)
		_ = dispatch(context.Background(), []string{"check", "--config", cfg}, te.env)
		out := te.stdout.String()
		want := "pass  aws_events           AWS answers in eu-west-1: 1 events of 1 sources"
		if failing {
			want = "warn  aws_events           db-cluster orders:"
		}
		if !strings.Contains(out, want) {
			t.Errorf("failing %v: check output lacks %q:\n%s", failing, want, out)
		}
	}
}
