package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// directives returns the unit's KEY=VALUE lines, every value per key.
func directives(unit string) map[string][]string {
	out := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[k] = append(out[k], v)
	}
	return out
}

// The unit says what moat needs and no more: the list, each line
// checked, so an edit that widens the sandbox fails here first.
func TestServiceUnitDirectives(t *testing.T) {
	d := directives(Service)
	want := map[string]string{
		"Type":                    "notify",
		"ExecStartPre":            Binary + " config check",
		"ExecStart":               Binary + " run",
		"ExecReload":              Binary + " reload",
		"CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH CAP_SYSLOG",
		"AmbientCapabilities":     "",
		"ProtectSystem":           "strict",
		"ProtectHome":             "read-only",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"StateDirectory":          "moat",
		"LogsDirectory":           "moat",
		"RuntimeDirectory":        "moat",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if got := d["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", got)
	}
	// ProtectSystem=strict: the only writable places are moat's own
	// directories, which systemd creates; no ReadWritePaths widen it.
	if rw := d["ReadWritePaths"]; len(rw) > 0 {
		t.Errorf("ReadWritePaths=%q: the daemon writes only its State/Logs/RuntimeDirectory", rw)
	}
	// AmbientCapabilities without User= does nothing (root has them all
	// anyway): the bounding set is what limits root.
	if u := d["User"]; len(u) > 0 && u[0] != "root" {
		t.Errorf("User=%q: the control socket and /var/lib/moat are root's", u)
	}
}

// What the example config makes the daemon write lies inside a directory
// the unit makes writable: the stumble was access_log under /var/log/moat
// with no LogsDirectory, so `moat gateway serve` exited 2 after `config
// check` said ok.
func TestExampleConfigWritesInsideUnitDirs(t *testing.T) {
	d := directives(Service)
	var writable []string
	for k, base := range map[string]string{"StateDirectory": "/var/lib/", "LogsDirectory": "/var/log/", "RuntimeDirectory": "/run/"} {
		for _, v := range d[k] {
			writable = append(writable, base+v+"/")
		}
	}
	re := regexp.MustCompile(`(?m)^\s*(access_log|storage):\s*(/\S+)`)
	found := 0
	for _, m := range re.FindAllStringSubmatch(Config, -1) {
		found++
		if !slices.ContainsFunc(writable, func(w string) bool { return strings.HasPrefix(m[2], w) }) {
			t.Errorf("examples/moat.yaml %s: %s is outside the unit's writable directories %v", m[1], m[2], writable)
		}
	}
	if found == 0 {
		t.Error("examples/moat.yaml names no access_log: the check checked nothing")
	}
}

// writeUnits writes the units with the binary replaced by one that
// exists, as `moat install --prefix` does, and returns their paths.
func writeUnits(t *testing.T) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for name, text := range map[string]string{"moat.service": Service, "moat-firewall.service": FirewallService, "moat-vpn.service": VPNService} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, Binary, exe)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// systemd itself reads the units: `systemd-analyze verify` finds no
// error, and `systemd-analyze security --offline` scores each at most 3.0
// ("OK"). No systemd as PID 1 is needed for either.
func TestUnitsVerifyAndSecurityScore(t *testing.T) {
	lab.RequireTool(t, "systemd-analyze", "nft")
	help, _ := exec.Command("systemd-analyze", "security", "--help").CombinedOutput()
	lab.Require(t, strings.Contains(string(help), "--offline"), "needs systemd-analyze security --offline (systemd 252 or later)")
	for _, p := range writeUnits(t) {
		// --man=no: the man pages are installed by the package, not here.
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", p).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(p), err, out)
		}
		// The threshold is in tenths: 30 is the 3.0 the issue asks for.
		out, err = exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=30", p).CombinedOutput()
		last := strings.TrimSpace(string(out))
		if i := strings.LastIndex(last, "\n"); i >= 0 {
			last = last[i+1:]
		}
		t.Logf("%s: %s", filepath.Base(p), last)
		if err != nil || !strings.Contains(last, "OK") {
			t.Errorf("systemd-analyze security %s: %v: %s\n%s", filepath.Base(p), err, last, out)
		}
	}
}
