package metrics

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Families returns the name and type ("counter", "gauge", "histogram") of
// every metric family dbprobe exports besides the Go and process
// collectors', so that checks can tell whether rules and dashboards name
// real metrics.
func Families() map[string]string {
	m, err := New(prometheus.NewRegistry(), Options{})
	if err != nil {
		panic(err) // a fresh registry cannot hold a duplicate
	}
	return maps.Clone(m.families)
}

var familyRE = regexp.MustCompile(`\b` + namespace + `_[a-zA-Z0-9_]+`)

// UnknownNames returns the dbprobe_* names in a PromQL expression that are
// not series dbprobe exports; a histogram's _bucket, _sum and _count series
// are exported. The result is sorted and without duplicates.
func UnknownNames(expr string) []string {
	fams := Families()
	var out []string
	for _, name := range familyRE.FindAllString(expr, -1) {
		if _, ok := fams[name]; ok {
			continue
		}
		if histogramSeries(fams, name) {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func histogramSeries(fams map[string]string, name string) bool {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] == "histogram" {
			return true
		}
	}
	return false
}
