// Package container_test builds dbprobe's image with podman, the way
// `make image-scratch` does, and runs it the way docs/deploy.md tells users
// to: non-root, read-only root filesystem, no capabilities, the journal on a
// volume, the config and password from mounted files, the run id from the
// environment, against a real MariaDB.
package container_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/internal/wait"
	"github.com/dbprobe/dbprobe/lab/mariadb"
	"github.com/dbprobe/dbprobe/lab/mariadb/mariadbtest"
	"github.com/dbprobe/dbprobe/probe"
)

// podman is the podman command with its own storage in a temp dir: the test
// leaves nothing behind in the machine's image store and does not collide
// with other runs. vfs needs no kernel overlay support; the image is small.
type podman struct {
	t    *testing.T
	args []string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (scripts/install-deps.sh installs it): %v", tool, err)
		}
	}
	dir := t.TempDir()
	return &podman{t: t, args: []string{"podman", "--root", filepath.Join(dir, "storage"),
		"--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}}
}

func (p *podman) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.args[0], append(p.args[1:], args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func TestImage(t *testing.T) {
	pm := newPodman(t)
	const image, version = "localhost/dbprobe:test", "v0.0.0-test"

	build := exec.Command("./build-scratch.sh", image, version)
	build.Env = append(os.Environ(), "PODMAN="+strings.Join(pm.args, " "))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-scratch.sh: %v\n%s", err, out)
	}
	if got := pm.must("image", "inspect", "--format", "{{.Config.User}}", image); got != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", got)
	}

	srv := mariadbtest.Start(t, mariadb.Options{})
	mariadbtest.Exec(t, srv, "CREATE DATABASE dbprobe", probe.HeartbeatTableDDL("dbprobe.dbprobe_heartbeat"))
	mariadbtest.CreateUser(t, srv, "probe", "s3cret:#'pw", "SELECT, INSERT, UPDATE ON dbprobe.*")

	// The shipped config, listening on a free loopback port instead of
	// 0.0.0.0:8306: the container shares the host's network here.
	dir := t.TempDir()
	shipped, err := os.ReadFile("dbprobe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	port, err := mariadb.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := strings.Replace(string(shipped), "listen: 0.0.0.0:8306", "listen: "+listen, 1)
	if cfg == string(shipped) {
		t.Fatal("dbprobe.yaml no longer listens on 0.0.0.0:8306; update this test")
	}
	cfgFile, pwFile, journal := filepath.Join(dir, "dbprobe.yaml"), filepath.Join(dir, "password"), filepath.Join(dir, "journal")
	writeOwned(t, cfgFile, cfg, 0o444)
	writeOwned(t, pwFile, "s3cret:#'pw\n", 0o400)
	if err := os.Mkdir(journal, 0o700); err != nil {
		t.Fatal(err)
	}
	chownNonroot(t, journal)

	const runID = "container-test-run"
	// --runtime runc, the ulimits and --network host are what these CI
	// machines need (crun fails on cgroup v1 hybrid, raising rlimits is
	// refused, no CNI); users need none of them.
	name := pm.must("run", "-d", "--runtime", "runc",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024", "--network", "host",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-v", cfgFile+":/etc/dbprobe/dbprobe.yaml:ro",
		"-v", pwFile+":/run/secrets/dbprobe-password:ro",
		"-v", journal+":/var/lib/dbprobe",
		"-e", "DBPROBE_RUN_ID="+runID, "-e", "DBPROBE_OBSERVER=eu-west-1a",
		"-e", "DBPROBE_HOST="+srv.Host(), "-e", "DBPROBE_PORT="+strconv.Itoa(srv.Port()),
		image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := pm.run("logs", name)
			t.Logf("container log:\n%s", out)
		}
		pm.run("rm", "-f", name)
	})

	base := "http://" + listen
	wait.For(t, time.Minute, "/-/ready to answer 200", func() bool {
		code, _ := get(base + "/-/ready")
		if running := pm.must("inspect", "--format", "{{.State.Running}}", name); running != "true" {
			t.Fatalf("container stopped before it was ready")
		}
		return code == http.StatusOK
	})
	if code, _ := get(base + "/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy: %d", code)
	}
	// Probes succeed through the container: reads and writes on both
	// streams, the password read from the mounted file.
	wantSeries := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^dbprobe_up\{[^}]*mode="fresh"[^}]*target="orders"[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^dbprobe_up\{[^}]*mode="pooled"[^}]*target="orders"[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^dbprobe_writes_total\{[^}]*mode="fresh"[^}]*\} [1-9]`),
		regexp.MustCompile(`(?m)^dbprobe_observer_info\{observer="eu-west-1a"\} 1$`),
		regexp.MustCompile(`(?m)^dbprobe_build_info\{[^}]*version="` + version + `"`),
	}
	var metrics string
	wait.For(t, time.Minute, "successful probes in /metrics", func() bool {
		_, metrics = get(base + "/metrics")
		return !slices.ContainsFunc(wantSeries, func(re *regexp.Regexp) bool { return !re.MatchString(metrics) })
	})
	if strings.Contains(metrics, "s3cret") {
		t.Error("/metrics shows the password")
	}

	// The process runs as uid 65532 with no capabilities.
	pid := pm.must("inspect", "--format", "{{.State.Pid}}", name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65532\t65532\t65532\t65532", "Gid:\t65532\t65532\t65532\t65532", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(string(status), want+"\n") {
			t.Errorf("/proc/%s/status lacks %q:\n%s", pid, want, status)
		}
	}

	// SIGTERM (podman stop) flushes the journal, writes the report on the
	// volume and exits 0.
	pm.must("stop", "--time", "60", name)
	if code := pm.must("inspect", "--format", "{{.State.ExitCode}}", name); code != "0" {
		t.Errorf("exit code %s after SIGTERM, want 0", code)
	}
	segments, _ := filepath.Glob(filepath.Join(journal, "events-*.jsonl"))
	if len(segments) == 0 {
		t.Fatalf("no journal segment on the volume %s", journal)
	}
	if n := countLines(t, segments[0], "s3cret"); n.total == 0 || n.matching != 0 {
		t.Errorf("journal %s: %d lines, %d with the password", segments[0], n.total, n.matching)
	}
	var report struct {
		RunID string `json:"run_id"`
	}
	b, err := os.ReadFile(filepath.Join(journal, "report.json"))
	if err != nil {
		t.Fatalf("report.json on the volume: %v", err)
	}
	if err := json.Unmarshal(b, &report); err != nil || report.RunID != runID {
		t.Errorf("report.json: run_id %q (%v), want %q", report.RunID, err, runID)
	}
	if _, err := os.Stat(filepath.Join(journal, "report.html")); err != nil {
		t.Errorf("report.html on the volume: %v", err)
	}
}

// TestDockerfileMatchesScratch: the image users build from the Dockerfile
// and the one built here FROM scratch run the same way.
func TestDockerfileMatchesScratch(t *testing.T) {
	docker, scratch := finalStage(t, "../../Dockerfile"), finalStage(t, "Containerfile.scratch")
	if !slices.Equal(docker, scratch) {
		t.Errorf("final stages differ:\nDockerfile:\n  %s\nContainerfile.scratch:\n  %s",
			strings.Join(docker, "\n  "), strings.Join(scratch, "\n  "))
	}
	for _, want := range []string{"USER 65532:65532", `VOLUME ["/var/lib/dbprobe"]`, "EXPOSE 8306"} {
		if !slices.Contains(scratch, want) {
			t.Errorf("the image lacks %q", want)
		}
	}
}

// finalStage returns the instructions after the last FROM that say how the
// image runs (COPY sources differ by design), continuation lines joined.
func finalStage(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	cont := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && !cont) {
			continue
		}
		if cont {
			lines[len(lines)-1] += " " + strings.TrimSuffix(l, "\\")
		} else {
			lines = append(lines, strings.TrimSuffix(l, "\\"))
		}
		cont = strings.HasSuffix(l, "\\")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var stage []string
	for _, l := range lines {
		switch kw, _, _ := strings.Cut(l, " "); kw {
		case "FROM":
			stage = nil
		case "LABEL", "USER", "WORKDIR", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD", "ENV", "HEALTHCHECK", "STOPSIGNAL":
			stage = append(stage, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(stage) == 0 {
		t.Fatalf("%s: no final stage", path)
	}
	return stage
}

// writeOwned writes a file the container's user (65532) owns, as a
// Kubernetes fsGroup or a careful operator would.
func writeOwned(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	chownNonroot(t, path)
}

func chownNonroot(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, 65532, 65532); err != nil {
		t.Fatalf("chown %s to the image's user: %v (run the test as root, as CI does)", path, err)
	}
}

func get(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type lineCount struct{ total, matching int }

func countLines(t *testing.T, path, substr string) lineCount {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n lineCount
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		n.total++
		if strings.Contains(l, substr) {
			n.matching++
		}
	}
	return n
}
