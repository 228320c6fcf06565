package config

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
)

// isolateAWS keeps the machine's AWS settings out of a test.
func isolateAWS(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

func TestIAMValidation(t *testing.T) {
	isolateAWS(t)
	const rdsHost = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
	tests := []struct {
		name, target string
		want         []string // substrings of the error; none means valid
	}{
		{"host with tls", `{name: a, host: ` + rdsHost + `, user: probe, auth: iam, tls: {}}`, nil},
		{"dsn with tls=true", `{name: a, dsn: "probe@tcp(` + rdsHost + `:3306)/?tls=true", auth: iam}`, nil},
		{"dsn with tls block", `{name: a, dsn: "probe@tcp(` + rdsHost + `:3306)/", auth: iam, tls: {server_name: x.example}}`, nil},
		{"explicit region", `{name: a, host: 10.0.0.1, user: probe, auth: iam, tls: {}, aws: {region: us-east-1}}`, nil},
		{"no tls", `{name: a, host: ` + rdsHost + `, user: probe, auth: iam}`,
			[]string{"targets[0].auth: iam sends its token in clear text, so it needs TLS", "targets[0].tls"}},
		{"dsn without tls", `{name: a, dsn: "probe@tcp(` + rdsHost + `:3306)/", auth: iam}`,
			[]string{"targets[0].auth: iam sends its token in clear text"}},
		{"dsn tls=preferred", `{name: a, dsn: "probe@tcp(` + rdsHost + `:3306)/?tls=preferred", auth: iam}`,
			[]string{"targets[0].auth: iam needs TLS that never falls back to plain text (got tls=preferred"}},
		{"password too", `{name: a, host: ` + rdsHost + `, user: probe, password: s3cretpw, auth: iam, tls: {}}`,
			[]string{"targets[0].auth: iam makes the password from AWS credentials; remove the password from password"}},
		{"password in dsn", `{name: a, dsn: "probe:s3cretpw@tcp(` + rdsHost + `:3306)/?tls=true", auth: iam}`,
			[]string{"remove the password from the DSN"}},
		{"no region", `{name: a, host: 10.0.0.1, user: probe, auth: iam, tls: {}}`,
			[]string{"targets[0].aws: no AWS region: set targets[0].aws.region (or AWS_REGION)"}},
		{"bad role", `{name: a, host: ` + rdsHost + `, user: probe, auth: iam, tls: {}, aws: {role_arn: dbprobe}}`,
			[]string{`targets[0].aws.role_arn: must be an ARN`, `(got "dbprobe")`}},
		{"bad region", `{name: a, host: ` + rdsHost + `, user: probe, auth: iam, tls: {}, aws: {region: eu-west1}}`,
			[]string{`targets[0].aws.region: must be an AWS region such as eu-west-1 (got "eu-west1")`}},
		{"aws block unused", `{name: a, host: ` + rdsHost + `, user: probe, password: pw, aws: {region: eu-west-1}}`,
			[]string{"targets[0].aws: is used only by auth: iam and aws_events, and this target sets neither"}},
		{"green aws block unused", `{name: a, host: ` + rdsHost + `, user: probe, auth: iam, tls: {}, write: {table: hb}, green: {host: g.example, user: probe, password: pw, aws: {region: eu-west-1}}}`,
			[]string{"targets[0].green.aws: is used only by auth: iam, which this endpoint does not set"}},
		{"skip verify", `{name: a, host: ` + rdsHost + `, user: probe, auth: iam, tls: {insecure_skip_verify: true}}`,
			[]string{"targets[0].auth: iam needs TLS that verifies the server"}},
		{"bad auth", `{name: a, host: ` + rdsHost + `, user: probe, auth: kerberos}`,
			[]string{`targets[0].auth: must be password or iam (got "kerberos")`}},
		{"green without tls", `{name: a, host: ` + rdsHost + `, user: probe, write: {table: hb}, green: {host: g.example, user: probe, auth: iam, aws: {region: eu-west-1}}}`,
			[]string{"targets[0].green.auth: iam sends its token in clear text"}},
		{"tls twice", `{name: a, dsn: "probe:pw@tcp(` + rdsHost + `:3306)/?tls=true", tls: {}}`,
			[]string{"targets[0].tls: the DSN sets tls=true too"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("targets:\n  - "+tt.target+"\n"), noEnv)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				tg := &c.Targets[0]
				if tg.IAM() == nil {
					t.Fatal("no IAM token source")
				}
				mc := tg.MySQL()
				if !mc.AllowCleartextPasswords || mc.TLS == nil || mc.Passwd != "" {
					t.Errorf("driver config: cleartext=%v tls=%v password set=%v; want cleartext over TLS, no password",
						mc.AllowCleartextPasswords, mc.TLS != nil, mc.Passwd != "")
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded; want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cretpw") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestIAMRegion(t *testing.T) {
	isolateAWS(t)
	for _, tt := range []struct{ env, cfg, host, want string }{
		{"", "", "db.cluster-x.ap-south-1.rds.amazonaws.com", "ap-south-1"},
		{"us-west-2", "", "db.cluster-x.ap-south-1.rds.amazonaws.com", "us-west-2"},
		{"us-west-2", "eu-central-1", "db.cluster-x.ap-south-1.rds.amazonaws.com", "eu-central-1"},
	} {
		t.Setenv("AWS_REGION", tt.env)
		src := "targets:\n  - {name: a, host: " + tt.host + ", user: probe, auth: iam, tls: {}"
		if tt.cfg != "" {
			src += ", aws: {region: " + tt.cfg + "}"
		}
		c, err := Parse([]byte(src+"}\n"), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Targets[0].IAM().Region(); got != tt.want {
			t.Errorf("env %q, aws.region %q, host %s: region %q, want %q", tt.env, tt.cfg, tt.host, got, tt.want)
		}
		if got := c.Targets[0].IAM().Endpoint(); got != tt.host+":3306" {
			t.Errorf("token endpoint %q, want %s:3306", got, tt.host)
		}
	}
}

func TestDSNTLS(t *testing.T) {
	c, err := Parse([]byte(`targets:
  - {name: a, dsn: "probe:pw@tcp(db.example:3306)/", tls: {server_name: proxy.example}}
  - {name: b, dsn: "probe:pw@tcp(db.example:3306)/", tls: {}}
  - {name: c, dsn: "probe:pw@tcp(db.example:3306)/"}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"proxy.example", "db.example", ""} {
		tc := c.Targets[i].MySQL().TLS
		switch {
		case want == "" && tc != nil:
			t.Errorf("target %d: TLS on without tls", i)
		case want != "" && (tc == nil || tc.ServerName != want || tc.MinVersion != tls.VersionTLS12):
			t.Errorf("target %d: TLS %+v, want server name %q and TLS 1.2+", i, tc, want)
		}
	}
}

func TestAWSEventsValidation(t *testing.T) {
	isolateAWS(t)
	const host = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
	tests := []struct {
		name, events string
		want         []string
	}{
		{"cluster", `{cluster: orders}`, nil},
		{"all", `{cluster: orders, instances: [orders-1, orders-2], bluegreen_deployment: bgd-abc123, interval: 30s}`, nil},
		{"nothing", `{}`, []string{"targets[0].aws_events: name at least one of cluster, instances, bluegreen_deployment"}},
		{"bad cluster", `{cluster: "orders;drop"}`, []string{`targets[0].aws_events.cluster: must be a DB cluster identifier (got "orders;drop")`}},
		{"bad instance", `{instances: [ok, "1bad"]}`, []string{`targets[0].aws_events.instances[1]: must be a DB instance identifier (got "1bad")`}},
		{"bad deployment", `{bluegreen_deployment: orders-upgrade}`, []string{`targets[0].aws_events.bluegreen_deployment: must be a Blue/Green deployment identifier`}},
		{"too often", `{cluster: orders, interval: 500ms}`, []string{"targets[0].aws_events.interval: must be at least 2s (got 500ms)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("targets:\n  - {name: a, host: "+host+", user: probe, aws_events: "+tt.events+"}\n"), noEnv)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				tg := &c.Targets[0]
				if tg.AWSConfig() == nil || tg.AWSConfig().Region != "eu-west-1" || len(tg.AWSEvents.Sources()) == 0 {
					t.Errorf("aws config %+v, sources %v", tg.AWSConfig(), tg.AWSEvents.Sources())
				}
				if tg.AWSEvents.Interval.Duration < MinAWSEventsInterval {
					t.Errorf("interval %v", tg.AWSEvents.Interval.Duration)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
	_, err := Parse([]byte("targets:\n  - {name: a, host: 10.0.0.1, user: probe, aws_events: {cluster: orders}}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "targets[0].aws: no AWS region: set targets[0].aws.region") {
		t.Errorf("no region: %v", err)
	}
}

func TestReadAndPoolValidation(t *testing.T) {
	tests := []struct {
		name, extra string
		want        string // "" means valid
	}{
		{"select", `read: {statement: "SELECT COUNT(*) FROM app.orders WHERE status = 'open'", expect_value: "3"}`, ""},
		{"with", `read: {statement: "WITH o AS (SELECT id FROM app.orders) SELECT COUNT(*) FROM o", expect_rows: 1}`, ""},
		{"show and comment", `read: {statement: "/* app */ SHOW TABLES FROM app"}`, ""},
		{"quoted words", "read: {statement: \"SELECT 'update; delete' AS `insert` FROM dual;\"}", ""},
		{"insert", `read: {statement: "INSERT INTO app.orders VALUES (1)"}`, `targets[0].read.statement: must be a read (SELECT, SHOW, WITH ... SELECT, DESCRIBE, EXPLAIN); got one starting "INSERT"`},
		{"cte delete", `read: {statement: "WITH x AS (SELECT 1) DELETE FROM app.orders"}`, "targets[0].read.statement: must only read, but has DELETE outside quotes"},
		{"for update", `read: {statement: "SELECT * FROM app.orders FOR UPDATE"}`, "has UPDATE outside quotes"},
		{"outfile", `read: {statement: "SELECT * FROM app.orders INTO OUTFILE '/tmp/x'"}`, "has OUTFILE outside quotes"},
		{"executable comment", `read: {statement: "SELECT * FROM app.orders /*!50000 FOR UPDATE */"}`, "has UPDATE outside quotes"},
		{"mariadb executable comment", `read: {statement: "SELECT 1 /*M!100000 INTO OUTFILE '/tmp/x' */"}`, "has OUTFILE outside quotes"},
		{"optimizer hint", `read: {statement: "SELECT /*+ MAX_EXECUTION_TIME(500) */ COUNT(*) FROM app.orders"}`, ""},
		{"two statements", `read: {statement: "SELECT 1; DROP TABLE app.orders"}`, "targets[0].read.statement: must be one statement"},
		{"unterminated", `read: {statement: "SELECT 'x"}`, "has an unterminated ' quote"},
		{"empty", `read: {statement: " "}`, "targets[0].read.statement: is required"},
		{"value of no row", `read: {statement: "SELECT id FROM app.orders", expect_rows: 0, expect_value: "1"}`, "targets[0].read.expect_value: needs a row, but expect_rows is 0"},
		{"negative rows", `read: {statement: "SELECT 1", expect_rows: -1}`, "targets[0].read.expect_rows: must be 0 or more (got -1)"},
		{"pool", `modes: [pooled], pool: {max_lifetime: 30m, validate_on_borrow: true, reject_read_only: true}`, ""},
		{"pool without pooled", `pool: {validate_on_borrow: true}`, "targets[0].pool: only applies to the pooled mode"},
		{"pool lifetime", `modes: [pooled], pool: {max_lifetime: 10ms}`, "targets[0].pool.max_lifetime: must be at least 1s (got 10ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("targets:\n  - {name: a, host: db.example, user: probe, "+tt.extra+"}\n"), noEnv)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Parse error %v; want it to contain %q", err, tt.want)
			}
		})
	}
}
