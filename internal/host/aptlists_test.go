package host

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCompareDebianVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1:9.2p1-2+deb12u5", "1:9.2p1-2+deb12u6", -1},
		{"1:1.0", "2.0", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0-1", "1.0-1~bpo1", 1},
		{"2.36-9+deb12u10", "2.36-9+deb12u9", 1},
		{"1.0a", "1.0+", -1},
		{"1.10", "1.9", 1},
		{"0:1.0", "1.0", 0},
		{"1.0", "1.0-0", 0},
		{"6.1.119-1", "6.1.12-1", 1},
	} {
		if got := CompareDebianVersions(c.a, c.b); got != c.want {
			t.Errorf("%s vs %s: got %d want %d", c.a, c.b, got, c.want)
		}
		if got := CompareDebianVersions(c.b, c.a); got != -c.want {
			t.Errorf("%s vs %s (swapped): got %d want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestPendingFromLists(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/var/lib/dpkg/status", "Package: openssh-server\nStatus: install ok installed\nVersion: 1:9.2p1-2+deb12u5\n\n"+
		"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u10\n\n"+
		"Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n")
	// The security index, gzip-compressed as Acquire::GzipIndexes leaves it.
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	io.WriteString(z, "Package: openssh-server\nVersion: 1:9.2p1-2+deb12u6\n\nPackage: libc6\nVersion: 2.36-9+deb12u9\n\nPackage: removed\nVersion: 2.0\n\n")
	z.Close()
	write("/var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.gz", buf.String())
	write("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", "Package: libc6\nVersion: 9.9\n\n")
	u, err := New(root).UpgradableSecurity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.Method != "apt lists" || len(u.Security) != 1 || u.Security[0] != "openssh-server" {
		t.Fatalf("got %+v, want only openssh-server from the security index", u)
	}
}
