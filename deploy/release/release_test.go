// Package release_test checks .goreleaser.yaml without goreleaser, whose
// build would cost CI minutes: the file decodes strictly into the fields
// goreleaser v2 defines (names copied from its pkg/config), says what the
// releases promise (Linux and macOS, amd64 and arm64, static, trimmed,
// version stamped, checksummed), and each target cross-compiles with
// exactly its env, flags and ldflags into a binary of the right format that
// carries the version.
package release_test

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const file = "../../.goreleaser.yaml"

// allTargets cross-compiles every target (make release-check). By default
// the test builds the host's target and darwin/arm64, the other system and
// the other architecture: a cold cross build costs about three CPU-minutes
// and the remaining two add little over these.
var allTargets = flag.Bool("release.all", false, "cross-compile every target of .goreleaser.yaml, not only the host's and darwin/arm64")

// sampled says whether TestCrossCompile builds goos/goarch.
func sampled(goos, goarch string) bool {
	return *allTargets || goos == runtime.GOOS && goarch == runtime.GOARCH || goos == "darwin" && goarch == "arm64"
}

// project is the part of goreleaser's config.Project this file uses.
type project struct {
	Version     int    `yaml:"version"`
	ProjectName string `yaml:"project_name"`
	Builds      []struct {
		ID           string   `yaml:"id"`
		Main         string   `yaml:"main"`
		Binary       string   `yaml:"binary"`
		Env          []string `yaml:"env"`
		Flags        []string `yaml:"flags"`
		Ldflags      []string `yaml:"ldflags"`
		Goos         []string `yaml:"goos"`
		Goarch       []string `yaml:"goarch"`
		ModTimestamp string   `yaml:"mod_timestamp"`
	} `yaml:"builds"`
	Archives []struct {
		ID           string   `yaml:"id"`
		IDs          []string `yaml:"ids"`
		Formats      []string `yaml:"formats"`
		NameTemplate string   `yaml:"name_template"`
		Files        []string `yaml:"files"`
	} `yaml:"archives"`
	Checksum struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	Snapshot struct {
		VersionTemplate string `yaml:"version_template"`
	} `yaml:"snapshot"`
	Changelog struct {
		Sort string `yaml:"sort"`
	} `yaml:"changelog"`
	Release struct {
		GitHub struct {
			Owner string `yaml:"owner"`
			Name  string `yaml:"name"`
		} `yaml:"github"`
	} `yaml:"release"`
}

func load(t *testing.T) project {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var p project
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return p
}

func TestConfig(t *testing.T) {
	p := load(t)
	if p.Version != 2 {
		t.Errorf("version %d: goreleaser v2 wants 2", p.Version)
	}
	if len(p.Builds) != 1 {
		t.Fatalf("%d builds, want 1", len(p.Builds))
	}
	b := p.Builds[0]
	if _, err := os.Stat(filepath.Join("../..", b.Main, "main.go")); err != nil {
		t.Errorf("main %s: %v", b.Main, err)
	}
	if b.Binary != "dbprobe" {
		t.Errorf("binary %q", b.Binary)
	}
	if !slices.Equal(sorted(b.Goos), []string{"darwin", "linux"}) || !slices.Equal(sorted(b.Goarch), []string{"amd64", "arm64"}) {
		t.Errorf("targets %v x %v, want linux and darwin x amd64 and arm64", b.Goos, b.Goarch)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("env %v: static binaries need CGO_ENABLED=0", b.Env)
	}
	if !slices.Contains(b.Flags, "-trimpath") || b.ModTimestamp != "{{ .CommitTimestamp }}" {
		t.Errorf("flags %v, mod_timestamp %q: reproducible builds need -trimpath and the commit time", b.Flags, b.ModTimestamp)
	}
	if ld := strings.Join(b.Ldflags, " "); !strings.Contains(ld, "-X main.version={{.Version}}") || strings.Contains(ld, ".Date") {
		t.Errorf("ldflags %q: want the version stamped and no build date (reproducible)", ld)
	}
	if p.Checksum.Algorithm != "sha256" || p.Checksum.NameTemplate == "" {
		t.Errorf("checksum %+v", p.Checksum)
	}
	if len(p.Archives) != 1 || !slices.Equal(p.Archives[0].IDs, []string{b.ID}) {
		t.Fatalf("archives %+v: want one, of build %s", p.Archives, b.ID)
	}
	for _, f := range p.Archives[0].Files {
		if _, err := os.Stat(filepath.Join("../..", f)); err != nil {
			t.Errorf("archive file %s: %v", f, err)
		}
	}
	if p.Snapshot.VersionTemplate == "" {
		t.Error("no snapshot version template: make release-snapshot needs one")
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestCrossCompile builds every target as goreleaser would (its env, flags
// and ldflags, the version template filled in) and checks what came out.
func TestCrossCompile(t *testing.T) {
	b := load(t).Builds[0]
	const version = "v0.0.0-release-test"
	ldflags := strings.ReplaceAll(strings.Join(b.Ldflags, " "), "{{.Version}}", version)
	if strings.Contains(ldflags, "{{") {
		t.Fatalf("ldflags %q: a template this test does not fill in", ldflags)
	}
	dir := t.TempDir()
	for _, goos := range b.Goos {
		for _, goarch := range b.Goarch {
			t.Run(goos+"_"+goarch, func(t *testing.T) {
				if !sampled(goos, goarch) {
					t.Skip("built with -release.all (make release-check)")
				}
				out := filepath.Join(dir, goos+"_"+goarch, b.Binary)
				args := append([]string{"build"}, b.Flags...)
				args = append(args, "-ldflags", ldflags, "-o", out, b.Main)
				cmd := exec.Command("go", args...)
				cmd.Dir = "../.."
				cmd.Env = append(append(os.Environ(), b.Env...), "GOOS="+goos, "GOARCH="+goarch)
				if msg, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
				}
				checkBinary(t, out, goos, goarch, version)
			})
		}
	}
}

func checkBinary(t *testing.T, path, goos, goarch, version string) {
	t.Helper()
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	want := map[string]string{"GOOS": goos, "GOARCH": goarch, "CGO_ENABLED": "0", "-trimpath": "true"}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], v)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(version)) {
		t.Errorf("the binary does not carry its version %s", version)
	}
	switch goos {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if m := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]; f.Machine != m {
			t.Errorf("ELF machine %v, want %v", f.Machine, m)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("dynamically linked: it has an interpreter")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("dynamically linked against %v", libs)
		}
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if c := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]; f.Cpu != c {
			t.Errorf("Mach-O CPU %v, want %v", f.Cpu, c)
		}
	default:
		t.Fatalf("no check for %s", goos)
	}
	if goos == runtime.GOOS && goarch == runtime.GOARCH {
		out, err := exec.Command(path, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "dbprobe "+version+" ") {
			t.Errorf("dbprobe version: %v %q", err, out)
		}
	}
}
