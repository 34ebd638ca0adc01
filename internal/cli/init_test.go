package cli

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/host"
)

func TestInitFromFixture(t *testing.T) {
	env := map[string]string{"SSH_CONNECTION": "203.0.113.50 51234 203.0.113.10 22", "SUDO_USER": "deploy"}
	s := inspect(context.Background(), host.New("../audit/testdata/hosts/redis-open"), func(k string) string { return env[k] })
	var b strings.Builder
	s.write(&b)
	out := b.String()
	c, err := config.Parse("init.yaml", []byte(out))
	if err != nil {
		t.Fatalf("init output does not validate: %v\n%s", err, out)
	}
	if c.Host.Admin.User != "deploy" {
		t.Errorf("admin %q", c.Host.Admin.User)
	}
	if len(c.Host.Admin.Sources) != 1 || c.Host.Admin.Sources[0].String() != "203.0.113.50/32" {
		t.Errorf("operator not in admin sources: %v", c.Host.Admin.Sources)
	}
	if c.SSH.Port != 22 || c.Firewall.PublicInterface != "eth0" {
		t.Errorf("ssh port %d, public interface %q", c.SSH.Port, c.Firewall.PublicInterface)
	}
	if len(c.Firewall.VPN) != 1 || c.Firewall.VPN[0].String() != "6379/tcp" {
		t.Errorf("redis must be suggested VPN-only, got %v\n%s", c.Firewall.VPN, out)
	}
	for _, want := range []string{"80/tcp       # caddy", "443/tcp      # caddy", "redis-server on 0.0.0.0: a datastore", "Local only, nothing to do: 53/tcp"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestInitCommandValidates(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"init", "--root", "../audit/testdata/hosts/clean"}, nil, &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := config.Parse("init.yaml", stdout.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// TestInitNoAdminCannotBeMissed: with no admin user to be found, init
// says so in the YAML itself, as well as on stderr.
func TestInitNoAdminCannotBeMissed(t *testing.T) {
	root := t.TempDir()
	copyDir(t, "../audit/testdata/hosts/clean", root)
	if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nsudo:x:27:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := inspect(context.Background(), host.New(root), func(string) string { return "" })
	var b strings.Builder
	s.write(&b)
	if !strings.Contains(b.String(), "# NOTE: no admin user found") {
		t.Errorf("the YAML does not say no admin was found:\n%s", b.String())
	}
	if _, err := config.Parse("init.yaml", []byte(b.String())); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.notes, func(n string) bool { return strings.HasPrefix(n, "no admin user found") }) {
		t.Errorf("notes (stderr): %v", s.notes)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, out)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConfigCheckDefaultMissing: with no file named and none at the
// default path, config check agrees with moat run (built-in defaults),
// and says so.
func TestConfigCheckDefaultMissing(t *testing.T) {
	if _, err := os.Stat(config.DefaultPath); err == nil {
		t.Skipf("%s exists on this host", config.DefaultPath)
	}
	t.Setenv("MOAT_CONFIG", "")
	var out, errb bytes.Buffer
	if code := Main([]string{"config", "check"}, nil, &out, &errb); code != ExitOK || !strings.Contains(errb.String(), "not found; moat run would use the built-in defaults") {
		t.Errorf("exit %d, %q %q", code, out.String(), errb.String())
	}
}
