package daemon

import (
	"slices"
	"testing"

	"github.com/dbprobe/dbprobe/config"
)

// TestEnvKeepsEachSecretOnce: targets sharing a password, and reloads
// bringing the same ones again, leave each secret once in what every
// failed probe's message is scanned for; a reload's new password joins
// the old, which a probe in flight may still carry.
func TestEnvKeepsEachSecretOnce(t *testing.T) {
	parse := func(pw string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(`targets:
  - {name: a, dsn: "probe:shared@tcp(127.0.0.1:3306)/x"}
  - {name: b, dsn: "probe:shared@tcp(127.0.0.1:3307)/x"}
  - {name: c, dsn: "probe:`+pw+`@tcp(127.0.0.1:3308)/x"}
http: {listen: ""}
`), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	d := &Daemon{cfg: parse("old")}
	d.env(d.cfg)
	d.env(parse("old"))
	env := d.env(parse("new"))
	slices.Sort(env.Secrets)
	if want := []string{"new", "old", "shared"}; !slices.Equal(env.Secrets, want) {
		t.Errorf("secrets %q; want %q", env.Secrets, want)
	}
}
