// Package compose_test checks the compose stack's structure. Its images
// cannot be pulled where the tests run, so nothing here starts it: the
// file is decoded strictly, every file it mounts must exist, what one
// service expects of another (ports, paths, names, variables) must agree,
// and the configuration files it mounts pass the real tools' checks
// (dbprobe's loader, promtool).
package compose_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dbprobe/dbprobe/config"
	"github.com/dbprobe/dbprobe/internal/promtest"
)

// composeFile holds the subset of the compose specification this stack
// uses; a key outside it is a decoding error, so the test keeps up with
// the file.
type composeFile struct {
	Name     string              `yaml:"name"`
	Services map[string]service  `yaml:"services"`
	Volumes  map[string]struct{} `yaml:"volumes"`
}

type service struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	NetworkMode string            `yaml:"network_mode"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	SecurityOpt []string          `yaml:"security_opt"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	ExtraHosts  []string          `yaml:"extra_hosts"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	StopGracePeriod string `yaml:"stop_grace_period"`
	Restart         string `yaml:"restart"`
	MemLimit        string `yaml:"mem_limit"`
	Healthcheck     *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
}

// mount is one "source:target[:ro]" volume entry.
type mount struct{ source, target string }

func (s service) mounts(t *testing.T) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro") {
			t.Errorf("volume %q: want source:target[:ro]", v)
			continue
		}
		out = append(out, mount{parts[0], parts[1]})
	}
	return out
}

// hostPath is where a bind mount's source lives, or "" for a named volume.
func (m mount) hostPath() string {
	if strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") {
		return m.source
	}
	return ""
}

// target returns the container path a host file or directory is mounted
// at, or fails.
func (s service) target(t *testing.T, host string) string {
	t.Helper()
	for _, m := range s.mounts(t) {
		if filepath.Clean(m.hostPath()) == filepath.Clean(host) {
			return m.target
		}
	}
	t.Fatalf("%s is not mounted", host)
	return ""
}

func load(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

var wantServices = []string{"dbprobe", "elasticsearch", "grafana", "kibana", "kibana-import", "kibana-password", "prometheus"}

func TestStructure(t *testing.T) {
	c := load(t)
	if got := slices.Sorted(maps.Keys(c.Services)); !slices.Equal(got, wantServices) {
		t.Fatalf("services %v, want %v", got, wantServices)
	}
	for name, s := range c.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", name)
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		for _, m := range s.mounts(t) {
			if p := m.hostPath(); p != "" {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s mounts %s: %v", name, p, err)
				}
			} else if _, ok := c.Volumes[m.source]; !ok {
				t.Errorf("%s mounts undeclared volume %s", name, m.source)
			}
		}
		// Published on loopback only: the stack has passwords but no TLS.
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond loopback", name, p)
			}
		}
	}
	if b := c.Services["dbprobe"].Build; b == nil || b.Dockerfile == "" {
		t.Error("dbprobe: no build")
	} else if _, err := os.Stat(filepath.Join(b.Context, b.Dockerfile)); err != nil {
		t.Errorf("dbprobe builds from %v", err)
	}
}

// TestVariables: every variable compose requires is in env.example, and
// nothing there is unused.
func TestVariables(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	required := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+):\?`).FindAllStringSubmatch(string(b), -1) {
		required[m[1]] = true
	}
	example := envExample(t)
	for v := range required {
		if _, ok := example[v]; !ok {
			t.Errorf("compose.yaml requires %s; env.example does not list it", v)
		}
	}
	for v := range example {
		if !required[v] && !strings.Contains(string(b), "${"+v+":-") {
			t.Errorf("env.example lists %s; compose.yaml does not use it", v)
		}
	}
}

func envExample(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("env.example")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("env.example: %q", l)
		}
		out[k] = v
	}
	return out
}

// TestDbprobe: dbprobe's configuration loads with what compose passes it,
// and Prometheus, Elasticsearch and the volume meet it where it says.
func TestDbprobe(t *testing.T) {
	c := load(t)
	s := c.Services["dbprobe"]
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = regexp.MustCompile(`^\$\{[A-Z_]+:[-?][^}]*\}$`).ReplaceAllString(v, "x")
	}
	env["DBPROBE_PORT"], env["DBPROBE_DNS_SERVER"] = "3306", "127.0.0.1:53"
	cfgPath := "dbprobe.yaml"
	if target := s.target(t, "./"+cfgPath); !slices.Contains(s.Command, target) {
		t.Errorf("dbprobe runs %q, its config is mounted at %s", s.Command, target)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var unset []string
	cfg, err := config.Parse(b, func(k string) string {
		v, ok := env[k]
		if !ok {
			unset = append(unset, k)
		}
		return v
	})
	if err != nil {
		t.Fatalf("dbprobe.yaml with compose's environment: %v (compose does not pass %v)", err, unset)
	}
	if s.NetworkMode != "host" {
		t.Fatalf("dbprobe's network_mode %q: the addresses below assume host", s.NetworkMode)
	}
	// The journal is on the named volume.
	var journal bool
	for _, m := range s.mounts(t) {
		journal = journal || (m.hostPath() == "" && m.target == cfg.Sinks.Journal.Dir)
	}
	if !journal {
		t.Errorf("journal dir %s is not a volume", cfg.Sinks.Journal.Dir)
	}
	// Elasticsearch, published on the host, is where dbprobe ships.
	es := c.Services["elasticsearch"]
	if cfg.Sinks.Elasticsearch == nil || len(cfg.Sinks.Elasticsearch.Addresses) != 1 {
		t.Fatal("dbprobe ships nowhere")
	}
	if want := "http://" + published(t, es, "9200"); cfg.Sinks.Elasticsearch.Addresses[0] != want {
		t.Errorf("dbprobe ships to %s; Elasticsearch is published at %s", cfg.Sinks.Elasticsearch.Addresses[0], want)
	}
	// Prometheus scrapes the port dbprobe listens on, through the host.
	_, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		Global        map[string]string `yaml:"global"`
		RuleFiles     []string          `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName        string `yaml:"job_name"`
			ScrapeInterval string `yaml:"scrape_interval"`
			ScrapeTimeout  string `yaml:"scrape_timeout"`
			StaticConfigs  []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAMLStrict(t, "prometheus.yml", &prom)
	if len(prom.ScrapeConfigs) != 1 || prom.ScrapeConfigs[0].JobName != "dbprobe" {
		t.Fatalf("scrape configs %+v: want one job named dbprobe, as the alerts expect", prom.ScrapeConfigs)
	}
	if got := prom.ScrapeConfigs[0].StaticConfigs[0].Targets; !slices.Equal(got, []string{"host.docker.internal:" + port}) {
		t.Errorf("Prometheus scrapes %v, dbprobe listens on %s", got, cfg.HTTP.Listen)
	}
	if !slices.Contains(c.Services["prometheus"].ExtraHosts, "host.docker.internal:host-gateway") {
		t.Error("prometheus cannot resolve host.docker.internal")
	}
}

func published(t *testing.T, s service, containerPort string) string {
	t.Helper()
	for _, p := range s.Ports {
		if i := strings.LastIndex(p, ":"); i > 0 && p[i+1:] == containerPort {
			return p[:i]
		}
	}
	t.Fatalf("port %s is not published", containerPort)
	return ""
}

// TestPrometheus: the configuration and the rules it loads pass promtool,
// with the rules mounted where the configuration looks for them.
func TestPrometheus(t *testing.T) {
	s := load(t).Services["prometheus"]
	cfgTarget := s.target(t, "./prometheus.yml")
	if !slices.Contains(s.Command, "--config.file="+cfgTarget) {
		t.Errorf("prometheus runs %q, its config is mounted at %s", s.Command, cfgTarget)
	}
	dir := t.TempDir()
	for _, host := range []string{"./prometheus.yml", "../prometheus/alerts.yml"} {
		target := s.target(t, host)
		if filepath.Dir(target) != filepath.Dir(cfgTarget) {
			t.Fatalf("%s is mounted at %s, outside the config's directory", host, target)
		}
		b, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(target)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Relative rule_files resolve against the config's directory: promtool
	// checks the rules too, and says how many it found.
	out, err := promtest.RunPromtool(t, dir, nil, "check", "config", "--lint=all", "--lint-fatal", filepath.Base(cfgTarget))
	if err != nil || !strings.Contains(out, "1 rule files found") || !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

// TestGrafana: the provisioned data source is the kind the dashboard asks
// for, and the dashboard provider reads the directory compose mounts.
func TestGrafana(t *testing.T) {
	s := load(t).Services["grafana"]
	prov := s.target(t, "./grafana/provisioning")
	if prov != "/etc/grafana/provisioning" {
		t.Errorf("provisioning mounted at %s, Grafana reads /etc/grafana/provisioning", prov)
	}
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			IsDefault                    bool           `yaml:"isDefault"`
			Editable                     bool           `yaml:"editable"`
			JSONData                     map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAMLStrict(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	var dash struct {
		Templating struct {
			List []struct {
				Name, Type string
				Query      any
			}
		}
	}
	readJSON(t, "../../dashboards/grafana/dbprobe.json", &dash)
	var wantType string
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" {
			wantType, _ = v.Query.(string)
		}
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != wantType || !ds.Datasources[0].IsDefault {
		t.Errorf("data sources %+v; the dashboard wants a default %q", ds.Datasources, wantType)
	}
	if u := ds.Datasources[0].URL; u != "http://prometheus:"+strings.TrimPrefix(published(t, load(t).Services["prometheus"], "9090"), "127.0.0.1:") {
		t.Errorf("data source URL %s", u)
	}

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAMLStrict(t, "grafana/provisioning/dashboards/dbprobe.yaml", &dp)
	dashTarget := s.target(t, "../../dashboards/grafana")
	if len(dp.Providers) != 1 || dp.Providers[0].Options.Path != dashTarget {
		t.Errorf("dashboard providers %+v; the dashboards are mounted at %s", dp.Providers, dashTarget)
	}
	if home := s.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != dashTarget+"/dbprobe.json" {
		t.Errorf("home dashboard %s", home)
	}
}

// TestKibana: the one-shot import posts the file compose mounts, after
// Kibana is healthy; Kibana logs in with the password the other one-shot
// sets.
func TestKibana(t *testing.T) {
	c := load(t)
	imp := c.Services["kibana-import"]
	target := imp.target(t, "../../dashboards/kibana/dbprobe.ndjson")
	cmd := strings.Join(imp.Command, " ")
	for _, want := range []string{"file=@" + target, "http://kibana:5601/api/saved_objects/_import", "kbn-xsrf: true"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("kibana-import runs %q: no %q", cmd, want)
		}
	}
	if imp.DependsOn["kibana"].Condition != "service_healthy" || c.Services["kibana"].Healthcheck == nil {
		t.Error("kibana-import must wait for a healthy Kibana")
	}
	if c.Services["kibana"].DependsOn["kibana-password"].Condition != "service_completed_successfully" {
		t.Error("kibana must start after its password is set")
	}
	pw := strings.Join(c.Services["kibana-password"].Command, " ")
	if !strings.Contains(pw, "kibana_system/_password") || c.Services["kibana"].Environment["ELASTICSEARCH_USERNAME"] != "kibana_system" {
		t.Errorf("kibana-password runs %q", pw)
	}
	for _, name := range []string{"kibana-import", "kibana-password"} {
		if c.Services[name].Restart != "no" {
			t.Errorf("%s is a one-shot: restart must be \"no\"", name)
		}
	}
}

func readYAMLStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
