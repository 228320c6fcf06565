// Package tmpfs gives tests a small real file system that fills up: a
// tmpfs mounted for the test, and filler files to take its space.
package tmpfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a fresh directory and unmounts it
// when the test ends. Mounting needs root (CAP_SYS_ADMIN); without it the
// test is skipped, saying why.
func Mount(t testing.TB, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("mounting a %d-byte tmpfs needs root: %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes filler files of chunk bytes into dir until its file system
// is full and returns their paths, so that the test can free space a
// chunk at a time.
func Fill(t testing.TB, dir string, chunk int) []string {
	t.Helper()
	buf := make([]byte, chunk)
	var out []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("filler-%05d", i))
		err := os.WriteFile(p, buf, 0o600)
		out = append(out, p)
		if errors.Is(err, syscall.ENOSPC) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Free removes the filler files.
func Free(t testing.TB, files []string) {
	t.Helper()
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}
