// Package systemd_test checks dbprobe.service with the real systemd-analyze:
// it must verify without a single warning (a misspelt directive is only a
// warning to systemd, and a silently ignored hardening line is no
// hardening) and keep its sandbox score.
package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const unit = "dbprobe.service"

// maxExposure is systemd-analyze security's threshold on its 0-100 scale
// (it displays tenths): the unit scores 1.4 today.
const maxExposure = "20"

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("this test needs systemd-analyze (scripts/install-deps.sh --test installs systemd): %v", err)
	}
	return p
}

// installable returns a copy of the unit whose ExecStart points at an
// executable that exists: verify refuses a missing binary, and the test
// must not depend on dbprobe being installed.
func installable(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "dbprobe")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const installed = "ExecStart=/usr/local/bin/dbprobe "
	if !strings.Contains(string(b), installed) {
		t.Fatalf("%s: no %q line", unit, installed)
	}
	out := filepath.Join(dir, unit)
	if err := os.WriteFile(out, []byte(strings.Replace(string(b), installed, "ExecStart="+bin+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	path := installable(t)
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--threshold="+maxExposure, path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security above %s: %v\n%s", maxExposure, err, out)
	}
}

// TestVerifyCatchesTypos: the check above fails on a misspelt directive.
func TestVerifyCatchesTypos(t *testing.T) {
	sa := systemdAnalyze(t)
	path := installable(t)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "ProtectSystem=", "ProtectSytem=", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if !strings.Contains(string(out), "ProtectSytem") {
		t.Errorf("verify said nothing of a misspelt directive: %q", out)
	}
}

// TestDirectives: what docs/deploy.md promises of the unit.
func TestDirectives(t *testing.T) {
	d := directives(t)
	want := map[string]string{
		"Type":                     "exec",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"DynamicUser":              "yes",
		"StateDirectory":           "dbprobe",
		"WorkingDirectory":         "%S/dbprobe",
		"LoadCredential":           "mysql-password:/etc/dbprobe/mysql-password",
		"RestartPreventExitStatus": "2",
		"NoNewPrivileges":          "yes",
		"CapabilityBoundingSet":    "",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"PrivateTmp":               "yes",
		"RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter":         "@system-service",
		"LimitNOFILE":              "65536",
	}
	for k, v := range want {
		if !slices.Contains(d[k], v) {
			t.Errorf("%s=%s missing (have %q)", k, v, d[k])
		}
	}
	// In-flight probes finish within their timeout (default 2s), then the
	// journal is flushed and the report written: the stop timeout must
	// leave room for both before systemd sends SIGKILL.
	stop, err := time.ParseDuration(strings.Join(d["TimeoutStopSec"], ""))
	if err != nil || stop < 30*time.Second {
		t.Errorf("TimeoutStopSec=%q: want at least 30s", d["TimeoutStopSec"])
	}
}

func directives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: not a directive: %q", unit, l)
		}
		d[k] = append(d[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}
