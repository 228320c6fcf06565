// Package helm_test checks dbprobe's Helm chart offline with the Helm SDK,
// the code `helm lint --strict` and `helm template` run: every values file in
// dbprobe/ci lints clean and renders; every rendered object decodes strictly
// into its Kubernetes API type (unknown or misspelt fields are errors); each
// zone's configuration loads with dbprobe's own loader; the PrometheusRule is
// deploy/prometheus/alerts.yml. It is a module of its own so that dbprobe's
// module does not depend on Kubernetes.
package helm_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/dbprobe/dbprobe/config"
)

const (
	chartDir    = "dbprobe"
	kubeVersion = "v1.31.0"
	namespace   = "probes"
	release     = "orders"
)

type valuesCase struct {
	name string
	vals map[string]any
}

// cases: the chart's defaults, then every ci/*-values.yaml over them.
func cases(t *testing.T) []valuesCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("want several values files in %s/ci: %v %v", chartDir, files, err)
	}
	out := []valuesCase{{"default", map[string]any{}}}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, valuesCase{filepath.Base(f), v})
	}
	return out
}

// TestLint is `helm lint --strict` (pkg/lint, which the command runs):
// anything above INFO fails.
func TestLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases(t) {
		t.Run(c.name, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir, c.vals, namespace, kv)
			for _, m := range res.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("lint: %s", m)
				}
			}
		})
	}
}

// render does what `helm template orders dbprobe -n probes --kube-version
// ... --api-versions monitoring.coreos.com/v1` does, through the packages it
// uses (pkg/action would also build a Kubernetes client: twice the
// packages to compile for nothing offline): values coalesced over the
// defaults and checked against values.schema.json, templates rendered,
// NOTES.txt left out.
func render(t *testing.T, vals map[string]any) ([]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	caps.APIVersions = append(caps.APIVersions, "monitoring.coreos.com/v1")
	if !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		t.Fatalf("chart needs Kubernetes %s", ch.Metadata.KubeVersion)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, err
	}
	out, err := engine.Engine{}.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	var docs []string
	for _, name := range slices.Sorted(maps.Keys(out)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		split := releaseutil.SplitManifests(out[name])
		keys := slices.Collect(maps.Keys(split))
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			docs = append(docs, name+"#"+k+"\n"+split[k])
		}
	}
	return docs, nil
}

// objects is what one rendering holds, decoded.
type objects struct {
	statefulSets    []*appsv1.StatefulSet
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	serviceMonitors []*monitoringv1.ServiceMonitor
	prometheusRules []*monitoringv1.PrometheusRule
}

// decode decodes every document ("template#manifest-N", a newline, its
// YAML) strictly, as the API server would: JSON field names are
// case-sensitive, unknown and duplicate fields are errors.
func decode(t *testing.T, docs []string) objects {
	t.Helper()
	var o objects
	for _, d := range docs {
		k, m, _ := strings.Cut(d, "\n")
		j, err := yaml.YAMLToJSONStrict([]byte(m))
		if err != nil {
			t.Errorf("%s: %v\n%s", k, err, m)
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(j, &head); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 StatefulSet":
			obj = add(&o.statefulSets)
		case "v1 ConfigMap":
			obj = add(&o.configMaps)
		case "v1 Secret":
			obj = add(&o.secrets)
		case "v1 Service":
			obj = add(&o.services)
		case "v1 ServiceAccount":
			obj = add(&o.serviceAccounts)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj = add(&o.serviceMonitors)
		case "monitoring.coreos.com/v1 PrometheusRule":
			obj = add(&o.prometheusRules)
		default:
			t.Errorf("%s: unexpected %s %s: teach this test its type\n%q", k, head.APIVersion, head.Kind, m)
			continue
		}
		strict, err := kjson.UnmarshalStrict(j, obj)
		if err != nil {
			t.Errorf("%s: %v", k, err)
		}
		for _, e := range strict {
			t.Errorf("%s: %v", k, e)
		}
	}
	return o
}

// add appends a new T to *list and returns it for decoding into.
func add[T any](list *[]*T) *T {
	v := new(T)
	*list = append(*list, v)
	return v
}

func TestTemplate(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.name, func(t *testing.T) {
			docs, err := render(t, c.vals)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			o := decode(t, docs)
			checkObservers(t, c, o)
			checkMonitoring(t, c, o)
		})
	}
}

// values reads a key of the rendered case's values over the chart's
// defaults.
func values(t *testing.T, c valuesCase) chartutil.Values {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := chartutil.CoalesceValues(ch, c.vals)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func checkObservers(t *testing.T, c valuesCase, o objects) {
	vals := values(t, c)
	zones, _ := vals["zones"].([]any)
	if len(o.statefulSets) != len(zones) || len(zones) == 0 {
		t.Fatalf("%d StatefulSets for %d zones", len(o.statefulSets), len(zones))
	}
	if len(o.configMaps) != 1 || len(o.services) != 1 {
		t.Fatalf("%d ConfigMaps, %d Services: want one of each", len(o.configMaps), len(o.services))
	}
	cm := o.configMaps[0]
	grace := int64(vals["terminationGracePeriodSeconds"].(float64))
	runIDs := map[string]bool{}
	observers := map[string]bool{}
	for i, ss := range o.statefulSets {
		zone := zones[i].(map[string]any)
		name := zone["name"].(string)
		if !strings.HasSuffix(ss.Name, "-"+name) {
			t.Errorf("StatefulSet %s for zone %s", ss.Name, name)
		}
		if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 {
			t.Errorf("%s: replicas %v, want 1: one writer per journal", ss.Name, ss.Spec.Replicas)
		}
		pod := ss.Spec.Template.Spec
		if got, want := pod.NodeSelector, zone["nodeSelector"]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: nodeSelector %v, want %v", ss.Name, got, want)
		}
		if len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "journal" {
			t.Errorf("%s: want one volume claim template named journal", ss.Name)
		}
		if r := ss.Spec.PersistentVolumeClaimRetentionPolicy; r == nil || r.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("%s: the journal's volume must outlive the StatefulSet: %+v", ss.Name, r)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers", ss.Name, len(pod.Containers))
		}
		ctr := pod.Containers[0]
		mounts := map[string]string{}
		for _, m := range ctr.VolumeMounts {
			mounts[m.MountPath] = m.Name
		}
		if mounts["/var/lib/dbprobe"] != "journal" || mounts["/etc/dbprobe/config"] != "config" {
			t.Errorf("%s: mounts %v", ss.Name, mounts)
		}
		if !slices.Equal(ctr.Args, []string{"run", "--config", "/etc/dbprobe/config/dbprobe.yaml"}) {
			t.Errorf("%s: args %q", ss.Name, ctr.Args)
		}
		if p := ctr.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/-/ready" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: readiness probe %+v", ss.Name, p)
		}
		if p := ctr.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/-/healthy" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: liveness probe %+v", ss.Name, p)
		}
		if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "http" || ctr.Ports[0].ContainerPort != 8306 {
			t.Errorf("%s: ports %+v", ss.Name, ctr.Ports)
		}
		checkSecurity(t, ss.Name, pod, ctr)
		if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != grace {
			t.Errorf("%s: terminationGracePeriodSeconds %v, want %d", ss.Name, pod.TerminationGracePeriodSeconds, grace)
		}

		// The zone's configuration, as mounted, loads with dbprobe's loader.
		var key string
		for _, v := range pod.Volumes {
			if v.Name == "config" && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name && len(v.ConfigMap.Items) == 1 && v.ConfigMap.Items[0].Path == "dbprobe.yaml" {
				key = v.ConfigMap.Items[0].Key
			}
		}
		cfg := loadZoneConfig(t, c, o, ss.Name, cm.Data[key])
		if cfg == nil {
			continue
		}
		runIDs[cfg.RunID] = true
		observers[cfg.Observer.Name] = true
		if cfg.Observer.Labels["zone"] != name {
			t.Errorf("%s: observer labels %v, want zone=%s", ss.Name, cfg.Observer.Labels, name)
		}
		if cfg.Sinks.Journal.Dir != "/var/lib/dbprobe" || cfg.HTTP.Listen != "0.0.0.0:8306" {
			t.Errorf("%s: journal %q, listen %q", ss.Name, cfg.Sinks.Journal.Dir, cfg.HTTP.Listen)
		}
		for _, tg := range cfg.Targets {
			if timeout := tg.EffectiveTimeout(); int64(timeout.Seconds())+15 > grace {
				t.Errorf("%s: target %s timeout %v leaves less than 15 s of the %d s grace period", ss.Name, tg.Name, timeout, grace)
			}
		}
	}
	if len(runIDs) != 1 {
		t.Errorf("run ids %v: every observer must share one", runIDs)
	}
	if want := cmpOr(vals["runId"].(string), release); !runIDs[want] {
		t.Errorf("run ids %v, want %s", runIDs, want)
	}
	if len(observers) != len(zones) {
		t.Errorf("observers %v: want one name per zone", observers)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func checkSecurity(t *testing.T, name string, pod corev1.PodSpec, ctr corev1.Container) {
	t.Helper()
	psc, sc := pod.SecurityContext, ctr.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.FSGroup == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v", name, psc)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: container securityContext %+v", name, sc)
	}
}

// loadZoneConfig loads a zone's dbprobe.yaml the way dbprobe in the pod
// would: ${VAR} from the Secret's keys (or placeholders for an existing
// Secret), mounted files from a temp dir.
func loadZoneConfig(t *testing.T, c valuesCase, o objects, name, data string) *config.Config {
	t.Helper()
	if data == "" {
		t.Errorf("%s: no configuration in the ConfigMap", name)
		return nil
	}
	env := map[string]string{}
	for _, s := range o.secrets {
		for k, v := range s.Data {
			env[k] = string(v)
		}
	}
	dir := t.TempDir()
	for mount, content := range map[string]string{"/run/secrets/dbprobe/": "pw\n", "/etc/dbprobe/ca/": caBundle(t)} {
		local := filepath.Join(dir, strings.ReplaceAll(strings.Trim(mount, "/"), "/", "_"))
		if err := os.Mkdir(local, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"password", "global-bundle.pem"} {
			if err := os.WriteFile(filepath.Join(local, f), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		data = strings.ReplaceAll(data, mount, local+"/")
	}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if len(o.secrets) == 0 {
			return "from-an-existing-secret" // existingSecret, or none: dbprobe itself reports an unset one
		}
		return ""
	}
	cfg, err := config.Parse([]byte(data), getenv)
	if err != nil {
		t.Errorf("%s: dbprobe rejects its configuration: %v\n%s", name, err, data)
		return nil
	}
	return cfg
}

func caBundle(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("a PEM bundle to stand in for the RDS one: %v", err)
	}
	return string(b)
}

func checkMonitoring(t *testing.T, c valuesCase, o objects) {
	vals := values(t, c)
	want := func(key string) int {
		if m, _ := vals[key].(map[string]any); m["enabled"] == true {
			return 1
		}
		return 0
	}
	if len(o.serviceMonitors) != want("serviceMonitor") || len(o.prometheusRules) != want("prometheusRule") {
		t.Fatalf("%d ServiceMonitors, %d PrometheusRules", len(o.serviceMonitors), len(o.prometheusRules))
	}
	svc := o.services[0]
	for _, sm := range o.serviceMonitors {
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("ServiceMonitor scrapes port %q, the Service has %+v", ep.Port, svc.Spec.Ports)
			}
		}
		if fmt.Sprint(sm.Spec.Selector.MatchLabels) != fmt.Sprint(svc.Spec.Selector) {
			t.Errorf("ServiceMonitor selects %v, the Service's selector is %v", sm.Spec.Selector.MatchLabels, svc.Spec.Selector)
		}
		// The alert rules expect job="dbprobe".
		if sm.Spec.JobLabel != "app.kubernetes.io/name" || svc.Labels["app.kubernetes.io/name"] != "dbprobe" {
			t.Errorf("job label %q from Service labels %v: the alerts expect job=\"dbprobe\"", sm.Spec.JobLabel, svc.Labels)
		}
	}
	for _, pr := range o.prometheusRules {
		checkRulesMatchSource(t, pr)
	}
}

// checkRulesMatchSource: the PrometheusRule holds exactly the rules of
// deploy/prometheus/alerts.yml, expressions and templates untouched.
func checkRulesMatchSource(t *testing.T, pr *monitoringv1.PrometheusRule) {
	t.Helper()
	src, err := os.ReadFile("../prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(src, &want); err != nil {
		t.Fatalf("alerts.yml as a PrometheusRule spec: %v", err)
	}
	if len(want.Groups) == 0 {
		t.Fatal("alerts.yml has no groups")
	}
	if !reflect.DeepEqual(pr.Spec, want) {
		got, _ := yaml.Marshal(pr.Spec)
		t.Errorf("PrometheusRule differs from deploy/prometheus/alerts.yml:\n%s", got)
	}
}

// TestRejects: values that would make a broken or dishonest deployment fail
// at `helm template` or `helm install`, with a message naming the value.
func TestRejects(t *testing.T) {
	tests := []struct {
		name string
		vals string
		want string
	}{
		{"misspelt key", "zones: [{name: a, nodeselector: {}}]", "nodeselector"},
		{"no zone", "zones: []", "minItems"},
		{"zone name", "zones: [{name: Zone_A}]", "/zones/0/name"},
		{"run id from config", "config: {run_id: x, targets: [{name: a, host: h}]}", "config.run_id is set by the chart"},
		{"observer from config", "config: {observer: {name: x}, targets: [{name: a, host: h}]}", "config.observer is set by the chart"},
		{"journal dir", "config: {sinks: {journal: {dir: /tmp}}, targets: [{name: a, host: h}]}", "config.sinks.journal.dir is set by the chart"},
		{"listen", "config: {http: {listen: ':1'}, targets: [{name: a, host: h}]}", "config.http.listen is set by the chart"},
		{"grace period too short", "terminationGracePeriodSeconds: 16", "terminationGracePeriodSeconds (16) must exceed the largest probe timeout (2s)"},
		{"grace below a target's timeout", "config: {targets: [{name: a, host: h, timeout: 1m}]}", "largest probe timeout (60s)"},
		{"grace below a timeout in ms", "terminationGracePeriodSeconds: 16\nconfig: {timeout: 1500ms, targets: [{name: a, host: h}]}", "largest probe timeout (2s)"},
		{"persistence size", "persistence: {size: lots}", "/persistence/size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tc.vals), &vals); err != nil {
				t.Fatal(err)
			}
			_, err := render(t, vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
