package doctable

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadmeLayoutMatchesTree keeps the Layout table of README.md in step
// with the tree: every folder it names exists, and every top-level folder
// and every Go package lies in a folder it names.
func TestReadmeLayoutMatchesTree(t *testing.T) {
	const root = "../.."
	var named []string
	for _, row := range Rows(t, root+"/README.md", "folder") {
		for _, f := range Codes(row[0]) {
			named = append(named, f)
			if fi, err := os.Stat(filepath.Join(root, f)); err != nil || !fi.IsDir() {
				t.Errorf("README.md's layout names %s, which is not a folder", f)
			}
		}
		for _, f := range Codes(row[1]) {
			if strings.Contains(f, "/") && !strings.Contains(f, ".") {
				named = append(named, f)
			}
		}
	}
	reported := map[string]bool{}
	covered := func(dir string) bool {
		return slices.ContainsFunc(named, func(f string) bool { return dir == f || strings.HasPrefix(dir, f+"/") })
	}
	ignored := ignoredDirs(t, root)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" || ignored[rel] {
				return filepath.SkipDir
			}
			within := slices.ContainsFunc(named, func(f string) bool { return strings.HasPrefix(f, rel+"/") })
			if !strings.Contains(rel, "/") && rel != "." && !covered(rel) && !within {
				t.Errorf("README.md's layout does not say what %s holds", rel)
			}
			return nil
		}
		if dir := filepath.ToSlash(filepath.Dir(rel)); strings.HasSuffix(path, ".go") && dir != "." && !covered(dir) && !reported[dir] {
			reported[dir] = true
			t.Errorf("README.md's layout does not cover the package in %s", dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ignoredDirs are the top-level folders .gitignore keeps out of the tree
// ("/bin/", "/dist/"): what make demo or a release build leaves behind is
// not part of the layout.
func ignoredDirs(t *testing.T, root string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "/") && strings.HasSuffix(line, "/") && strings.Count(line, "/") == 2 {
			out[strings.Trim(line, "/")] = true
		}
	}
	return out
}
