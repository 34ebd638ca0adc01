package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/lab"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// moat install into a temp root: everything in place with its mode, the
// unit naming the installed binary, the scripts and pages the binary
// prints; a second run changes nothing; the operator's config survives.
func TestInstallIdempotentKeepsConfig(t *testing.T) {
	root := t.TempDir()
	// An operator's config and a too-open /etc/moat exist already.
	os.MkdirAll(filepath.Join(root, "etc/moat"), 0o755)
	os.Chmod(filepath.Join(root, "etc/moat"), 0o755)
	const mine = "# mine, hand-written\nssh:\n  port: 2222\n"
	os.WriteFile(filepath.Join(root, "etc/moat/moat.yaml"), []byte(mine), 0o600)

	out, errOut, code := runMain("install", "--root", root, "--prefix", "/opt/moat")
	if code != ExitOK {
		t.Fatalf("moat install: %d\n%s%s", code, out, errOut)
	}
	want := map[string]os.FileMode{
		"opt/moat/bin/moat": 0o755, "etc/systemd/system/moat.service": 0o644,
		"opt/moat/share/bash-completion/completions/moat": 0o644, "opt/moat/share/zsh/site-functions/_moat": 0o644,
		"opt/moat/share/fish/vendor_completions.d/moat.fish": 0o644,
		"opt/moat/share/man/man1/moat.1":                     0o644, "opt/moat/share/man/man5/moat.yaml.5": 0o644,
		"etc/moat": 0o700 | os.ModeDir, "var/lib/moat": 0o700 | os.ModeDir, "var/log/moat": 0o750 | os.ModeDir,
	}
	for p, mode := range want {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, mode %v, want %v", p, err, fi.Mode(), mode)
		}
	}
	if got := readFile(t, filepath.Join(root, "etc/moat/moat.yaml")); got != mine {
		t.Errorf("install overwrote the operator's config:\n%s", got)
	}
	unit := readFile(t, filepath.Join(root, "etc/systemd/system/moat.service"))
	if !strings.Contains(unit, "ExecStart=/opt/moat/bin/moat run\n") || strings.Contains(unit, "/usr/bin/moat") {
		t.Errorf("unit does not name the installed binary:\n%s", unit)
	}
	bash, _, _ := runMain("completion", "bash")
	if got := readFile(t, filepath.Join(root, "opt/moat/share/bash-completion/completions/moat")); got != bash {
		t.Error("installed bash completion differs from moat completion bash")
	}
	exe, _ := os.Executable()
	if readFile(t, filepath.Join(root, "opt/moat/bin/moat")) != readFile(t, exe) {
		t.Error("installed binary differs from this one")
	}
	again, _, code := runMain("install", "--root", root, "--prefix", "/opt/moat")
	for _, line := range strings.Split(strings.TrimSpace(again), "\n") {
		if line == "" {
			break
		}
		if !strings.HasPrefix(line, "unchanged") && !strings.HasPrefix(line, "kept") {
			t.Errorf("second install changed something: %q", line)
		}
	}
	if code != ExitOK {
		t.Fatalf("second install: %d", code)
	}

	// Uninstall keeps the config and the state; --purge removes them.
	os.WriteFile(filepath.Join(root, "var/lib/moat/moat.db"), []byte("bans"), 0o600)
	if out, errOut, code := runMain("uninstall", "--root", root, "--prefix", "/opt/moat", "--keep-firewall"); code != ExitOK {
		t.Fatalf("moat uninstall: %d\n%s%s", code, out, errOut)
	}
	for p := range want {
		_, err := os.Stat(filepath.Join(root, p))
		kept := strings.HasPrefix(p, "etc/moat") || strings.HasPrefix(p, "var/")
		if kept != (err == nil) {
			t.Errorf("after uninstall %s: %v (kept: %v)", p, err, kept)
		}
	}
	if readFile(t, filepath.Join(root, "etc/moat/moat.yaml")) != mine || readFile(t, filepath.Join(root, "var/lib/moat/moat.db")) != "bans" {
		t.Error("uninstall lost the config or the state")
	}
	if _, _, code := runMain("uninstall", "--root", root, "--prefix", "/opt/moat", "--keep-firewall", "--purge"); code != ExitOK {
		t.Fatalf("uninstall --purge: %d", code)
	}
	for _, p := range []string{"etc/moat", "var/lib/moat", "var/log/moat"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("uninstall --purge kept %s", p)
		}
	}
}

// A fresh root gets a starter config from moat init, and /etc/moat is
// created 0700 (the README's `moat init > /etc/moat/moat.yaml` failed for
// want of the directory).
func TestInstallWritesStarterConfig(t *testing.T) {
	root := t.TempDir()
	if _, errOut, code := runMain("install", "--root", root); code != ExitOK {
		t.Fatalf("moat install: %d %s", code, errOut)
	}
	cfg := filepath.Join(root, "etc/moat/moat.yaml")
	if fi, err := os.Stat(cfg); err != nil || fi.Mode() != 0o600 {
		t.Fatalf("starter config: %v", err)
	}
	if _, errOut, code := runMain("config", "check", "-c", cfg); code != ExitOK {
		t.Errorf("the starter config does not check: %s", errOut)
	}
}

// Uninstall refuses while a change waits for confirm (its rollback timer
// runs the binary uninstall would delete) and on a package-managed host.
func TestUninstallRefuses(t *testing.T) {
	root := t.TempDir()
	runMain("install", "--root", root)
	pending := change.HostPath(root, filepath.Join(change.StateDir, "pending"))
	os.MkdirAll(filepath.Dir(pending), 0o700)
	os.WriteFile(pending, []byte("20261206-1\n"), 0o600)
	if _, errOut, code := runMain("uninstall", "--root", root, "--keep-firewall"); code != ExitUsage || !strings.Contains(errOut, "waiting for confirm") {
		t.Errorf("uninstall with a pending change: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/moat")); err != nil {
		t.Error("a refused uninstall removed the binary")
	}
	os.Remove(pending)
	// An enabled moat-vpn.service may carry the only way in.
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/moat-vpn.service")
	os.MkdirAll(filepath.Dir(wants), 0o755)
	os.Symlink("../moat-vpn.service", wants)
	if _, errOut, code := runMain("uninstall", "--root", root, "--keep-firewall"); code != ExitUsage || !strings.Contains(errOut, "moat expose ssh public") {
		t.Errorf("uninstall with moat-vpn enabled: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/moat")); err != nil {
		t.Error("a refused uninstall removed the binary")
	}
	os.Remove(wants)
	// dpkg-query, asked about the root's database, says moat is installed.
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg/updates"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("Package: moat\nStatus: install ok installed\nVersion: 0.11.0\nArchitecture: amd64\nMaintainer: x\nDescription: x\n\n"), 0o644)
	for _, cmd := range []string{"install", "uninstall"} {
		if _, errOut, code := runMain(cmd, "--root", root); code != ExitUsage || !strings.Contains(errOut, "Debian package") {
			t.Errorf("%s on a dpkg-managed host: %d %q", cmd, code, errOut)
		}
	}
}

// The promise: uninstall takes table inet moat away only when sshd stays
// reachable without it. In a lab namespace (its own kernel tables), a
// second table that drops everything but what moat's table let in makes
// uninstall refuse and keep the table; without it, the table goes.
func TestUninstallRemovesTableOnlyIfSSHStaysReachable(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "ip", "nft")
	h := lab.New(t).Host("vps")
	root := t.TempDir()
	runMain("install", "--root", root)
	os.WriteFile(filepath.Join(root, "etc/moat/moat.yaml"), []byte("ssh:\n  port: 22\n"), 0o600)
	load := func(script string) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "t.nft")
		os.WriteFile(p, []byte(script), 0o600)
		h.MustRun(t, "nft", "-f", p)
	}
	load("table inet moat {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    tcp dport 22 accept\n  }\n}\n")
	load("table inet mine {\n  chain input {\n    type filter hook input priority 10; policy drop;\n    iif lo accept\n  }\n}\n")
	t.Setenv(envAsMoat, "1")
	exe, _ := os.Executable()
	uninstall := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := h.Run(ctx, exe, "uninstall", "--root", root)
		return string(out), err
	}
	out, err := uninstall()
	if err == nil || !strings.Contains(out, "refusing") || !strings.Contains(out, "DROPPED") {
		t.Fatalf("uninstall with a dropping ruleset left: %v\n%s", err, out)
	}
	h.MustRun(t, "nft", "list", "table", "inet", "moat")
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/moat")); err != nil {
		t.Error("a refused uninstall removed the binary")
	}
	// The operator opens sshd in their own table: now moat may go.
	h.MustRun(t, "nft", "add", "rule", "inet", "mine", "input", "tcp", "dport", "22", "accept")
	if out, err := uninstall(); err != nil || !strings.Contains(out, "removed   table inet moat") || !strings.Contains(out, "open") {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if out, err := h.Run(context.Background(), "nft", "list", "table", "inet", "moat"); err == nil {
		t.Fatalf("table inet moat still loaded:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/moat")); err == nil {
		t.Error("uninstall kept the binary")
	}
}
