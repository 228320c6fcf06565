package elasticsearch

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/esfake"
)

func TestClientTLSAndCredentials(t *testing.T) {
	tlsFake := func(opts esfake.Options) *esfake.Server {
		opts.TLS = true
		es := esfake.New(opts)
		t.Cleanup(es.Close)
		return es
	}
	caFile := func(es *esfake.Server) string {
		path := filepath.Join(t.TempDir(), "ca.pem")
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: es.Certificate()})
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fingerprint := func(es *esfake.Server) string {
		sum := sha256.Sum256(es.Certificate())
		var parts []string
		for _, b := range sum {
			parts = append(parts, fmt.Sprintf("%02X", b))
		}
		return strings.Join(parts, ":") // as openssl prints it
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		fake    esfake.Options
		extra   func(es *esfake.Server) []string
		wantErr string // "" = setup succeeds
	}{
		{"ca_file", esfake.Options{}, func(es *esfake.Server) []string { return []string{"ca_file: " + caFile(es)} }, ""},
		{"ca_fingerprint", esfake.Options{}, func(es *esfake.Server) []string {
			return []string{fmt.Sprintf("ca_fingerprint: %q", fingerprint(es))}
		}, ""},
		{"wrong fingerprint", esfake.Options{}, func(*esfake.Server) []string {
			return []string{"ca_fingerprint: " + strings.Repeat("ab", 32)}
		}, "no certificate of the server matches ca_fingerprint"},
		{"unknown CA", esfake.Options{}, func(*esfake.Server) []string { return nil }, "certificate"},
		{"password_file", esfake.Options{Username: "dbprobe", Password: "s3cret"}, func(es *esfake.Server) []string {
			return []string{"ca_file: " + caFile(es), "username: dbprobe", "password_file: " + pwFile}
		}, ""},
		{"service token", esfake.Options{ServiceToken: "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2VuMQ"}, func(es *esfake.Server) []string {
			return []string{"ca_file: " + caFile(es), "service_token: AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2VuMQ"}
		}, ""},
		{"api key as id:key", esfake.Options{APIKey: testAPIKey}, func(es *esfake.Server) []string {
			return []string{"ca_file: " + caFile(es), "api_key: right:key"}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := tlsFake(tt.fake)
			cfg := esConfig(t, es.URL, tt.extra(es)...)
			c, err := NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = c.Setup(ctx, cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Setup = %v; want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Setup = %v; want an error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestBackoffGrowsToItsCapWithJitter(t *testing.T) {
	for _, r := range []float64{0, 0.999} {
		b := backoff{min: 100 * time.Millisecond, max: time.Second, rand: func() float64 { return r }}
		var got []time.Duration
		for range 7 {
			got = append(got, b.next())
		}
		for i, d := range got {
			ceil := min(100*time.Millisecond<<i, time.Second)
			if d < ceil/2 || d >= ceil {
				t.Errorf("rand %v: wait %d = %v; want in [%v, %v)", r, i, d, ceil/2, ceil)
			}
		}
		b.reset()
		if d := b.next(); d >= 100*time.Millisecond {
			t.Errorf("first wait after reset = %v; want under the minimum again", d)
		}
	}
}

func TestDocIDIsDeterministicAndShort(t *testing.T) {
	a, b := DocID("run1/obs/db/fresh/42"), DocID("run1/obs/db/fresh/42")
	if a != b {
		t.Errorf("DocID differs for one event.id: %q, %q", a, b)
	}
	if a == DocID("run1/obs/db/fresh/43") {
		t.Error("DocID is the same for two events")
	}
	if len(a) != 22 || strings.ContainsAny(a, "+/=") {
		t.Errorf("DocID = %q; want 22 URL-safe characters", a)
	}
}
