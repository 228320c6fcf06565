package daemon

import (
	"testing"

	"github.com/dbprobe/dbprobe/config"
)

// TestFingerprint: a reload keeps a target running only when nothing its
// probing depends on changed, effective defaults and group labels included.
func TestFingerprint(t *testing.T) {
	const base = "interval: 1s\nhttp: {listen: \"\"}\ntargets:\n"
	parse := func(groups, targets string) fingerprint {
		t.Helper()
		cfg, err := config.Parse([]byte("groups: {pay: {labels: "+groups+"}}\n"+base+targets), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return fingerprintOf(&cfg.Targets[0])
	}
	ref := parse("{team: payments}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3306)/x", group: pay}`+"\n")
	for _, tc := range []struct {
		name, groups, targets string
		same                  bool
	}{
		{"unchanged", "{team: payments}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3306)/x", group: pay}`, true},
		{"password", "{team: payments}", `  - {name: db, dsn: "probe:pw2@tcp(127.0.0.1:3306)/x", group: pay}`, false},
		{"port", "{team: payments}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3307)/x", group: pay}`, false},
		{"interval", "{team: payments}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3306)/x", group: pay, interval: 2s}`, false},
		{"modes", "{team: payments}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3306)/x", group: pay, modes: [fresh, pooled]}`, false},
		{"own label", "{team: payments}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3306)/x", group: pay, labels: {wave: "2"}}`, false},
		{"group", "{team: payments}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3306)/x"}`, false},
		{"group's labels", "{team: ledger}", `  - {name: db, dsn: "probe:pw@tcp(127.0.0.1:3306)/x", group: pay}`, false},
	} {
		if got := parse(tc.groups, tc.targets+"\n").same(ref); got != tc.same {
			t.Errorf("%s: same = %v, want %v", tc.name, got, tc.same)
		}
	}
	if (fingerprint{}).same(fingerprint{}) {
		t.Error("targets that could not be encoded compare the same: a reload would never restart them")
	}
}
