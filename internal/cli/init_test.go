package cli

import (
	"bytes"
	"context"
	"errors"
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

// TestInitOutput attacks `moat init -o`: the directory is made private,
// the file loads, and an existing config (the operator's work) is never
// replaced without --force.
func TestInitOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "moat")
	path := filepath.Join(dir, "moat.yaml")
	root := "../audit/testdata/hosts/redis-open"
	var out, errb bytes.Buffer
	if code := Main([]string{"init", "--root", root, "-o", path}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v, want mode 0600", fi, err)
	}
	if _, err := config.Load(path, true); err != nil {
		t.Fatalf("written starter does not load: %v", err)
	}
	// The operator edits it; a second init must not lose that.
	mine := []byte("# mine\nssh:\n  port: 2222\n")
	os.WriteFile(path, mine, 0o600)
	errb.Reset()
	if code := Main([]string{"init", "--root", root, "-o", path}, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("overwrite without --force: exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "exists; not overwritten") {
		t.Errorf("refusal says %q", errb.String())
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, mine) {
		t.Fatalf("existing config changed without --force")
	}
	// The race: a file appearing between the check and the write is kept.
	race := filepath.Join(dir, "race.yaml")
	os.WriteFile(race, mine, 0o600)
	if err := writeStarter(race, []byte("x: 1\n"), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("writeStarter over an existing file: %v", err)
	}
	if got, _ := os.ReadFile(race); !bytes.Equal(got, mine) {
		t.Fatal("writeStarter replaced an existing file")
	}
	if code := Main([]string{"init", "--root", root, "-o", path, "--force"}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("--force: exit %d", code)
	}
	if got, _ := os.ReadFile(path); bytes.Equal(got, mine) {
		t.Fatal("--force did not replace the file")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".moat-init-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestConfigCheckFile attacks the old stumble: `moat config check FILE`
// checks FILE (never /etc/moat/moat.yaml), and a missing FILE is "not
// found", exit 2.
func TestConfigCheckFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("ssh:\n  port: 2222\n"), 0o600)
	var out, errb bytes.Buffer
	if code := Main([]string{"config", "check", good}, nil, &out, &errb); code != ExitOK || !strings.HasPrefix(out.String(), good+": ok") {
		t.Fatalf("exit %d, out %q, err %q", code, out.String(), errb.String())
	}
	missing := filepath.Join(dir, "x.yaml")
	for _, args := range [][]string{{"config", "check", missing}, {"config", "check", "-c", missing}} {
		out.Reset()
		errb.Reset()
		code := Main(args, nil, &out, &errb)
		if code != ExitUsage || out.Len() != 0 {
			t.Fatalf("%v: exit %d, out %q", args, code, out.String())
		}
		if !strings.HasPrefix(errb.String(), missing+": not found") || strings.Contains(errb.String(), config.DefaultPath) {
			t.Errorf("%v: says %q", args, errb.String())
		}
		if strings.Contains(errb.String(), "is not valid") || !strings.Contains(errb.String(), "moat init -o "+missing) {
			t.Errorf("a missing file is not an invalid one: %q", errb.String())
		}
	}
	if code := Main([]string{"config", "check", good, missing}, nil, &out, &errb); code != ExitUsage {
		t.Errorf("two files: exit %d", code)
	}
	// An invalid file gets the footer naming where every key is described.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("guard:\n  jails:\n    sshd:\n      logpath: /var/log/auth.log\n"), 0o600)
	errb.Reset()
	if code := Main([]string{"config", "check", bad}, nil, &out, &errb); code != ExitUsage ||
		!strings.Contains(errb.String(), "man 5 moat.yaml") || !strings.Contains(errb.String(), config.ExamplePath) || !strings.Contains(errb.String(), `did you mean "paths"?`) {
		t.Errorf("invalid file: exit %d, %q", code, errb.String())
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
