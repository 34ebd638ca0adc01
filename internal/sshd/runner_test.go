package sshd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunnerFixtures(t *testing.T) {
	requireSSHD(t)
	for _, tc := range []struct {
		host string
		c    Context
		key  string
		want string
	}{
		// cloud-init's drop-in is included before the main file's own
		// "PasswordAuthentication no", and sshd keeps the first value.
		{"cloudinit", Context{}, "passwordauthentication", "yes"},
		{"cloudinit", Context{User: "root", Addr: "203.0.113.7"}, "passwordauthentication", "yes"},
		{"cloudinit", Context{}, "x11forwarding", "yes"},
		{"matchuser", Context{User: "alice", Addr: "203.0.113.7"}, "passwordauthentication", "yes"},
		{"matchuser", Context{User: "bob", Addr: "203.0.113.7"}, "passwordauthentication", "no"},
		{"matchuser", Context{}, "passwordauthentication", "no"},
		{"matchaddress", Context{User: "root", Addr: "10.20.30.40"}, "passwordauthentication", "yes"},
		// sshd -T prints prohibit-password by its old name.
		{"matchaddress", Context{User: "root", Addr: "10.20.30.40"}, "permitrootlogin", "without-password"},
		{"matchaddress", Context{User: "root", Addr: "192.0.2.1"}, "passwordauthentication", "no"},
		{"matchaddress", Context{User: "root", Addr: "192.0.2.1"}, "permitrootlogin", "no"},
		{"matchaddress", Context{User: "root"}, "passwordauthentication", "no"},
		// nested: relative quoted Include with "=", glob order, a nested
		// Include, a dotfile glob(3) skips, an Include inside Match.
		{"nested", Context{}, "maxauthtries", "3"},
		{"nested", Context{}, "logingracetime", "30"},
		{"nested", Context{User: "dave"}, "passwordauthentication", "no"},
		{"nested", Context{User: "carol"}, "passwordauthentication", "yes"},
	} {
		r := Runner{Root: filepath.Join("testdata/hosts", tc.host)}
		e, err := r.Effective(context.Background(), tc.c)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.host, tc.c, err)
		}
		if got := e.Get(tc.key); got != tc.want {
			t.Errorf("%s %v: %s = %q, want %q", tc.host, tc.c, tc.key, got, tc.want)
		}
	}
}

// The throwaway -h host key never shows; without HostKey lines the list is
// sshd's defaults, with them exactly the configured ones.
func TestRunnerFixtureHostKeys(t *testing.T) {
	requireSSHD(t)
	for host, want := range map[string][]string{
		"cloudinit": defaultHostKeys,
		"nested":    {"/etc/ssh/ssh_host_ed25519_key"},
	} {
		e, err := Runner{Root: "testdata/hosts/" + host}.Effective(context.Background(), Context{})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.All("hostkey"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: hostkey = %q, want %q", host, got, want)
		}
	}
}

// A copy of this host's own sshd config, evaluated as a fixture, gives
// exactly what live sshd reports: the fixture machinery changes nothing.
func TestRunnerFixtureEqualsLive(t *testing.T) {
	requireRoot(t)
	requireSSHD(t)
	if _, err := os.Stat(DefaultConfigFile); err != nil {
		skipOrFail(t, "no "+DefaultConfigFile)
	}
	root := t.TempDir()
	copyTree(t, "/etc/ssh", filepath.Join(root, "etc/ssh"), func(name string) bool {
		return name == "sshd_config" || strings.HasPrefix(name, "sshd_config.d")
	})
	ctxs := []Context{{}, {User: "root", Addr: "203.0.113.7", LAddr: "10.0.0.2", LPort: 22}, {User: "nobody", Addr: "10.1.2.3"}}
	live, err := Runner{}.EffectiveMany(context.Background(), ctxs)
	if err != nil {
		t.Fatal(err)
	}
	fix, err := Runner{Root: root}.EffectiveMany(context.Background(), ctxs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ctxs {
		if !reflect.DeepEqual(live[i], fix[i]) {
			for _, k := range live[i].Keys() {
				if !reflect.DeepEqual(live[i].All(k), fix[i].All(k)) {
					t.Errorf("%v: %s live %q, fixture %q", ctxs[i], k, live[i].All(k), fix[i].All(k))
				}
			}
			t.Errorf("%v: live and fixture differ", ctxs[i])
		}
	}
}

// copyTree copies the files under src whose first path element passes keep.
func copyTree(t *testing.T, src, dst string, keep func(string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if !keep(strings.Split(rel, string(filepath.Separator))[0]) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunnerErrors(t *testing.T) {
	requireSSHD(t)
	ctx := context.Background()

	_, err := Runner{Root: "testdata/hosts/broken"}.Effective(ctx, Context{})
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("broken config: %v, want *RunError", err)
	}
	// sshd's complaint names the fixture file, not the temporary copy.
	if !strings.Contains(re.Stderr, "testdata/hosts/broken/etc/ssh/sshd_config line 2") || strings.Contains(re.Error(), "moat-sshd-") {
		t.Errorf("stderr = %q", re.Stderr)
	}
	if !strings.Contains(re.Hint, "sshd -t -f testdata/hosts/broken/etc/ssh/sshd_config") {
		t.Errorf("hint = %q", re.Hint)
	}
	t.Logf("broken: %v", err)

	if _, err := (Runner{Root: "testdata/hosts/missing"}).Effective(ctx, Context{}); err == nil || !strings.Contains(err.Error(), "hint") {
		t.Errorf("missing root: %v", err)
	}
	if _, err := (Runner{Root: "testdata/hosts/cloudinit", ConfigFile: "/etc/ssh/nope"}).Effective(ctx, Context{}); err == nil {
		t.Error("missing config: no error")
	}
	if _, err := (Runner{Root: "testdata/hosts/cloudinit", ConfigFile: "etc/ssh/sshd_config"}).Effective(ctx, Context{}); err == nil {
		t.Error("relative config: no error")
	}
	if _, err := (Runner{Root: "testdata/hosts/cloudinit"}).Effective(ctx, Context{User: "alice,addr=10.0.0.1"}); err == nil {
		t.Error("injected context: no error")
	}
	if _, err := (Runner{Binary: "/nonexistent/sshd", Root: "testdata/hosts/cloudinit"}).Effective(ctx, Context{}); err == nil {
		t.Error("missing binary: no error")
	}
	if _, err := (Runner{Binary: "no-such-sshd-binary"}).Effective(ctx, Context{}); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("binary not in PATH: %v", err)
	}
}

// A stand-in sshd that fails like Debian's does without /run/sshd: the
// error carries sshd's words and the fix.
func TestRunnerPrivsepHint(t *testing.T) {
	requireTool(t, "sh")
	// Under a fixture, as root, sshd runs as nobody: the stand-in must be
	// reachable for it, which t.TempDir (0700) is not.
	dir, err := os.MkdirTemp("", "moat-fake-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "sshd")
	script := "#!/bin/sh\necho 'Missing privilege separation directory: /run/sshd' >&2\nexit 255\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Runner{Binary: fake, Root: "testdata/hosts/cloudinit"}.Effective(context.Background(), Context{User: "root"})
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	if re.Stderr != "Missing privilege separation directory: /run/sshd" || !strings.Contains(re.Hint, "install -d -m 0755 /run/sshd") {
		t.Errorf("RunError = %+v", re)
	}
	if !strings.Contains(re.Command, "-C user=root") {
		t.Errorf("command = %q", re.Command)
	}
}

func TestCreateRuntimeDir(t *testing.T) {
	for _, d := range []string{"/etc/sshd-nope", "/run/../etc/x", "relative", "/run/"} {
		if createRuntimeDir(d) {
			t.Errorf("createRuntimeDir(%q) = true", d)
		}
	}
}

func TestEffectiveManyFast(t *testing.T) {
	requireSSHD(t)
	ctxs := make([]Context, 10)
	for i := range ctxs {
		ctxs[i] = Context{User: []string{"root", "alice", "bob"}[i%3], Addr: fmt.Sprintf("10.0.0.%d", i+1)}
	}
	r := Runner{Root: "testdata/hosts/matchuser"}
	start := time.Now()
	out, err := r.EffectiveMany(context.Background(), ctxs)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range out {
		want := map[string]string{"alice": "yes"}[ctxs[i].User]
		if want == "" {
			want = "no"
		}
		if got := e.Get("passwordauthentication"); got != want {
			t.Errorf("%v: passwordauthentication = %q, want %q", ctxs[i], got, want)
		}
	}
	// Speed is the benchmark's to measure: a loaded machine says nothing.
	t.Logf("10 sshd -T runs: %v", took)
}

func TestEffectiveManyCanceled(t *testing.T) {
	requireSSHD(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Runner{Root: "testdata/hosts/cloudinit"}.EffectiveMany(ctx, []Context{{}, {User: "root"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func BenchmarkEffectiveMany10(b *testing.B) {
	requireSSHD(b)
	ctxs := make([]Context, 10)
	for i := range ctxs {
		ctxs[i] = Context{User: "root", Addr: "192.0.2.1"}
	}
	r := Runner{Root: "testdata/hosts/cloudinit"}
	for b.Loop() {
		if _, err := r.EffectiveMany(context.Background(), ctxs); err != nil {
			b.Fatal(err)
		}
	}
}

// Live, as root, with sshd's privilege separation directory missing (as
// on a socket-activated or freshly booted host), the Runner creates it
// and succeeds. Run in a private mount namespace with an empty /run, so
// the host's /run is untouched.
func TestLivePrivsepDirCreated(t *testing.T) {
	const childEnv = "MOAT_SSHD_PRIVSEP_CHILD"
	if os.Getenv(childEnv) == "1" {
		if err := syscall.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mount tmpfs on /run: %v", err)
		}
		if _, err := os.Stat("/run/sshd"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("fresh /run has sshd: %v", err)
		}
		e, err := Runner{}.Effective(context.Background(), Context{User: "root", Addr: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		if !e.Has("passwordauthentication") {
			t.Fatal("no passwordauthentication in output")
		}
		fi, err := os.Stat("/run/sshd")
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Fatalf("/run/sshd: %v, %v", fi, err)
		}
		return
	}
	requireRoot(t)
	requireSSHD(t)
	if _, err := os.Stat(DefaultConfigFile); err != nil {
		skipOrFail(t, "no "+DefaultConfigFile)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLivePrivsepDirCreated$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		skipOrFail(t, "cannot create a mount namespace: "+err.Error())
	}
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
