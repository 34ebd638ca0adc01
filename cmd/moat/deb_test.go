package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// `make deb` builds both packages, and the one for this machine installs
// and runs as on a fresh Debian: scripts/deb-test.sh checks the contents
// (dpkg-deb -I/-c), runs lintian (errors fail), then dpkg -i in a private
// overlay of / and moat version, config check and audit from /usr/bin, the
// units through systemd-analyze, a remove refused under a pending change,
// remove keeping the config, purge removing it.
func TestDebBuildsInstallsAndRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two packages (-short)")
	}
	lab.RequireRoot(t)
	lab.RequireTool(t, "make", "go", "dpkg-deb", "dpkg", "lintian", "unshare", "chroot", "systemd-analyze", "man")
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("packages are built for amd64 and arm64, not %s", runtime.GOARCH)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	cmd := exec.Command("make", "-C", repo, "deb", "DEB_ARCHES=amd64 arm64", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs := map[string]string{}
	for _, a := range []string{"amd64", "arm64"} {
		m, _ := filepath.Glob(filepath.Join(dist, "moat_*_"+a+".deb"))
		if len(m) != 1 {
			t.Fatalf("make deb made %v for %s", m, a)
		}
		debs[a] = m[0]
		// The binary inside is built for that architecture.
		x := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-x", m[0], x).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
		}
		f, err := elf.Open(filepath.Join(x, "usr/bin/moat"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[a]
		if f.Machine != want {
			t.Errorf("%s package holds a %v binary", a, f.Machine)
		}
		// Static: no interpreter, no shared libraries.
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s binary is dynamically linked", a)
			}
		}
		f.Close()
	}
	// lintian, on both packages: no warning at all, and in particular not
	// uses-dpkg-database-directly (moat asks dpkg-query, it does not read
	// dpkg's database).
	for a, deb := range debs {
		out, err := exec.Command("lintian", "--tag-display-limit", "0", deb).CombinedOutput()
		if err != nil {
			t.Errorf("lintian %s: %v\n%s", a, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "W: ") || strings.HasPrefix(l, "E: ") || strings.Contains(l, "uses-dpkg-database-directly") {
				t.Errorf("lintian %s: %s", a, l)
			}
		}
	}
	cmd = exec.Command(filepath.Join(repo, "scripts/deb-test.sh"), debs[runtime.GOARCH])
	out, err := cmd.CombinedOutput()
	t.Logf("deb-test.sh:\n%s", tail(string(out), 60))
	if err != nil {
		t.Fatalf("deb-test.sh: %v", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "== ok") {
		t.Fatal("deb-test.sh did not finish")
	}
	if _, err := os.Stat("/usr/bin/moat"); err == nil {
		if o, _ := exec.Command("dpkg-query", "-W", "moat").CombinedOutput(); strings.HasPrefix(string(o), "moat\t") {
			t.Error("the host's dpkg database now lists moat: the overlay leaked")
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
