package config

import "errors"

// Overrides are values given on the command line, as the Prometheus
// exporters spell them (--web.listen-address, --log.level, ...). They win
// over the file and are validated with it; an error about one names the
// flag, since that is where the user has to fix it.
type Overrides struct {
	// Set tells which fields the flags set: a flag given as "" (to turn the
	// HTTP server off) still overrides the file.
	Set           map[string]bool
	WebListen     string
	WebConfigFile string
	// WebEnableLifecycle is --web.enable-lifecycle (or =false to turn off
	// what the file turns on).
	WebEnableLifecycle bool
	LogLevel           string
	LogFormat          string
	RunID              string
}

// overrideFields maps each overridable field path to its flag.
var overrideFields = []struct{ path, flag string }{
	{"http.listen", "--web.listen-address"},
	{"http.web_config_file", "--web.config.file"},
	{"http.enable_lifecycle", "--web.enable-lifecycle"},
	{"log.level", "--log.level"},
	{"log.format", "--log.format"},
	{"run_id", "--run-id"},
}

// FlagOf is the flag that sets the field at path, "" if none does.
func FlagOf(path string) string {
	for _, f := range overrideFields {
		if f.path == path {
			return f.flag
		}
	}
	return ""
}

func (o Overrides) apply(c *Config) {
	for _, f := range overrideFields {
		if !o.Set[f.flag] {
			continue
		}
		switch f.path {
		case "http.listen":
			c.HTTP.Listen = o.WebListen
		case "http.web_config_file":
			c.HTTP.WebConfigFile = o.WebConfigFile
		case "http.enable_lifecycle":
			c.HTTP.EnableLifecycle = o.WebEnableLifecycle
		case "log.level":
			c.Log.Level = o.LogLevel
		case "log.format":
			c.Log.Format = o.LogFormat
		case "run_id":
			c.RunID = o.RunID
		}
	}
}

// blame renames the errors of overridden fields after their flags.
func (o Overrides) blame(err error) {
	var ce *Error
	if !errors.As(err, &ce) {
		return
	}
	for _, fe := range ce.Fields {
		if fl := FlagOf(fe.Path); fl != "" && o.Set[fl] {
			fe.Path = fl
		}
	}
}
