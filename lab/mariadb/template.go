package mariadb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// templateFormat is part of the template's cache key: bump it whenever the
// way the template is built (installFlags, the bootstrap SQL) changes, so a
// template left in the temp dir by an older dbprobe is not reused.
const templateFormat = "3"

// completeMarker is written into a template before it is renamed into place;
// a template directory without it is not used.
const completeMarker = "dbprobe-template-complete"

// installFlags are the InnoDB file layout options the template is built with;
// every server started from the template must be started with the same ones.
var installFlags = []string{
	"--innodb-log-file-size=8M",
	"--innodb-data-file-path=ibdata1:4M:autoextend",
	"--innodb-buffer-pool-size=16M",
	// The default grows ibdata1 by 64 MiB at a time, which would triple
	// the bytes copied per server.
	"--innodb-autoextend-increment=1",
}

// Binaries locates the MariaDB programs dbprobe runs.
type Binaries struct {
	Mariadbd  string // the server
	InstallDB string // mariadb-install-db, builds a fresh datadir
}

// errNotInstalled is wrapped by FindBinaries when a program is missing.
var errNotInstalled = errors.New("mariadb server not installed (Debian/Ubuntu: apt-get install mariadb-server)")

// IsNotInstalled reports whether err says the MariaDB programs are missing.
func IsNotInstalled(err error) bool { return errors.Is(err, errNotInstalled) }

// FindBinaries looks for mariadbd and mariadb-install-db on PATH and then in
// the directories Debian and the MariaDB tarballs install them to (sbin is
// often not on a non-login PATH).
func FindBinaries() (Binaries, error) {
	var b Binaries
	var err error
	if b.Mariadbd, err = find("mariadbd", "mysqld"); err != nil {
		return b, err
	}
	if b.InstallDB, err = find("mariadb-install-db", "mysql_install_db"); err != nil {
		return b, err
	}
	return b, nil
}

func find(names ...string) (string, error) {
	dirs := []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin", "/usr/local/mysql/scripts"}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("find %s: %w", names[0], errNotInstalled)
}

// template returns the path of a pristine datadir for this mariadbd, building
// it on first use. The template lives in the system temp dir under a name
// derived from the binary, so every test binary and every dbprobe lab on the
// machine shares one; concurrent builders race harmlessly because each builds
// in its own directory and the first rename wins.
func template(ctx context.Context, bin Binaries) (string, error) {
	key, err := templateKey(bin)
	if err != nil {
		return "", err
	}
	final := filepath.Join(os.TempDir(), "dbprobe-mariadb-template-"+key)
	if _, err := os.Stat(filepath.Join(final, completeMarker)); err == nil {
		return final, nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "dbprobe-mariadb-template-build-")
	if err != nil {
		return "", fmt.Errorf("build mariadb template: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	data := filepath.Join(tmp, "data")
	// Temporary tables are named after the pid and a counter, which
	// collide between concurrent bootstraps sharing /tmp.
	scratch := filepath.Join(tmp, "tmp")
	if err := os.Mkdir(scratch, 0o755); err != nil {
		return "", fmt.Errorf("build mariadb template: %w", err)
	}
	args := append([]string{
		"--no-defaults",
		"--datadir=" + data,
		"--tmpdir=" + scratch,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--skip-name-resolve",
	}, installFlags...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, bin.InstallDB, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build mariadb template with %s: %s: %w", bin.InstallDB, lastLines(string(out), 15), err)
	}
	if err := os.WriteFile(filepath.Join(data, completeMarker), []byte(key+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("build mariadb template: %w", err)
	}
	if err := os.Rename(data, final); err != nil {
		// Someone else finished first: theirs is as good as ours.
		if _, statErr := os.Stat(filepath.Join(final, completeMarker)); statErr == nil {
			return final, nil
		}
		return "", fmt.Errorf("build mariadb template: %w", err)
	}
	return final, nil
}

// templateKey identifies the binary (path, size and mtime: an upgrade
// changes them; cheaper than asking mariadbd --version on every start), the
// user the files belong to, and the template format.
func templateKey(bin Binaries) (string, error) {
	st, err := os.Stat(bin.Mariadbd)
	if err != nil {
		return "", fmt.Errorf("mariadb template key: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d\n%d\n%s\n%d\n", templateFormat, bin.Mariadbd, st.Size(), st.ModTime().UnixNano(), strings.Join(installFlags, " "), os.Geteuid())
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// copyTree copies the regular files and directories under src to dst, which
// must not exist. io.Copy between two *os.File uses copy_file_range on Linux,
// so the copy stays in the kernel.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			if rel == completeMarker {
				return nil
			}
			return copyFile(p, target, info.Mode().Perm())
		default:
			return nil // sockets, pid files: nothing a pristine datadir needs
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lastLines returns at most n trailing lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
