package harden

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/sshd"
	"github.com/moat-sh/moat/internal/vpn"
)

const deployKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmE3MtVoBHX3dIGZXUb6gU8Z3c3fFqQ0sSPuV1Wqv2F deploy@laptop"

// noTimer arms nothing: these tests confirm or roll back by hand.
type noTimer struct{}

func (noTimer) Arm(context.Context, *change.Store, *change.Manifest) (change.TimerInfo, error) {
	return change.TimerInfo{Kind: "test"}, nil
}

// fixtureRoot copies a fixture host into a temporary root, then copies
// the sshd configuration of one of internal/sshd's fixtures over it.
func fixtureRoot(t *testing.T, sshdFixture string) string {
	t.Helper()
	root := t.TempDir()
	copyTree(t, "testdata/hosts/debian12", root)
	if sshdFixture != "" {
		os.RemoveAll(filepath.Join(root, "etc/ssh"))
		copyTree(t, filepath.Join("../sshd/testdata/hosts", sshdFixture), root)
	}
	return root
}

func copyTree(t *testing.T, src, dst string) {
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
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		fi, _ := in.Stat()
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chmod(filepath.Join(dst, "etc/shadow"), 0o640)
	}
}

// treeHash describes every path under root (but moat's own state): kind,
// mode, owner, bytes.
func treeHash(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "var/lib/moat" {
			return filepath.SkipDir
		}
		fi, _ := os.Lstat(p)
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(h[:8])
		}
		out[rel] = desc
		return nil
	})
	return out
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if k == "var" || k == "var/lib" {
			continue
		}
		if after[k] != v {
			t.Errorf("%s: was %q, now %q", k, v, after[k])
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok && k != "var/lib" && k != "var" {
			t.Errorf("%s: new after rollback (%s)", k, v)
		}
	}
}

func input() Input {
	h := DefaultHost()
	h.Admin.User = "deploy"
	h.Admin.Keys = []string{deployKey}
	h.Swap.Size = 16 << 20
	return Input{Host: h, SSH: DefaultSSH(), VPN: vpn.Config{Interfaces: []string{"wg0"}, Ranges: []schema.CIDR{schema.MustCIDR("10.8.0.0/24")}}, Source: "/etc/moat/moat.yaml"}
}

func plan(t *testing.T, root string, in Input, opt Options) *Plan {
	t.Helper()
	opt.Root = root
	p, err := MakePlan(context.Background(), in, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func apply(t *testing.T, root string, p *Plan) *change.Manifest {
	t.Helper()
	if len(p.Refusals) > 0 {
		t.Fatalf("refused: %v", p.Refusals)
	}
	m, err := change.NewStore(root).Apply(context.Background(), p.Steps, change.Options{Timer: noTimer{}, Handlers: Handlers(nil), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// effectiveFor runs sshd -T on the files under root for each user and
// source.
func effectiveFor(t *testing.T, root string, users, addrs []string) []sshd.Effective {
	t.Helper()
	var cs []sshd.Context
	for _, u := range users {
		for _, a := range addrs {
			cs = append(cs, sshd.Context{User: u, Addr: a})
		}
	}
	effs, err := sshd.Runner{Root: root}.EffectiveMany(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	return effs
}

// TestPlanChangesNothing: plan reads the tree and leaves it as it was.
func TestPlanChangesNothing(t *testing.T) {
	lab.RequireTool(t, "sshd")
	root := fixtureRoot(t, "")
	before := treeHash(t, root)
	p := plan(t, root, input(), Options{})
	if len(p.Refusals) > 0 {
		t.Errorf("refusals: %v", p.Refusals)
	}
	layers := ""
	for _, s := range p.Steps {
		layers += s.Layer + " "
	}
	if layers != "admin updates swap sysctl sshd " {
		t.Errorf("layers %q", layers)
	}
	sameTree(t, before, treeHash(t, root))
}

// TestCloudInitAndMatchAddress: cloud-init's drop-in says
// PasswordAuthentication yes, a Match Address block says it for 10/8;
// after apply sshd -T -C must say no for every user and source.
func TestCloudInitAndMatchAddress(t *testing.T) {
	lab.RequireTool(t, "sshd")
	for _, fx := range []string{"cloudinit", "matchaddress"} {
		t.Run(fx, func(t *testing.T) {
			root := fixtureRoot(t, fx)
			before := treeHash(t, root)
			// Before: the weakness is real.
			effs := effectiveFor(t, root, []string{"ops"}, []string{"10.1.2.3"})
			if effs[0].Get("passwordauthentication") != "yes" {
				t.Fatalf("fixture does not allow passwords to begin with")
			}
			in := input()
			in.Host.Swap.Disabled = true
			in.Host.Updates.Unattended = new(bool)
			p := plan(t, root, in, Options{Session: "198.51.100.9 50000 203.0.113.10 22"})
			m := apply(t, root, p)
			users := []string{"root", "ops", "deploy", "nobody-at-all"}
			addrs := []string{"10.1.2.3", "10.255.0.1", "198.51.100.9", "2001:db8::99", "100.64.0.1"}
			for i, e := range effectiveFor(t, root, users, addrs) {
				u, a := users[i/len(addrs)], addrs[i%len(addrs)]
				for k, want := range map[string]string{"passwordauthentication": "no", "kbdinteractiveauthentication": "no", "permitrootlogin": "no", "maxauthtries": "3", "x11forwarding": "no"} {
					if got := e.Get(k); got != want {
						t.Errorf("user=%s addr=%s: %s %q, want %q", u, a, k, got, want)
					}
				}
			}
			if _, err := change.NewStore(root).Rollback(context.Background(), m.ID, "test", change.RollbackOptions{Handlers: Handlers(nil)}); err != nil {
				t.Fatal(err)
			}
			sameTree(t, before, treeHash(t, root))
		})
	}
}

// TestApplyConfirmAndRollbackFixture runs every host layer against a
// fixture tree: the admin user is created (useradd --prefix), sshd moves
// to a new port, apt is verified with apt-config, a small swapfile is
// made, sysctls are written to the fixture's /proc/sys. Then a rollback
// restores every byte; a second run is confirmed and its final files
// land.
func TestApplyConfirmAndRollbackFixture(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd", "useradd", "usermod", "fallocate", "mkswap", "apt-config")
	root := fixtureRoot(t, "")
	before := treeHash(t, root)
	in := input()
	in.SSH.Port = 2222
	p := plan(t, root, in, Options{})
	if !p.SSH.Moved() || p.SSH.Port != 2222 {
		t.Fatalf("ssh plan %+v", p.SSH)
	}
	m := apply(t, root, p)
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.Contains(string(passwd), "\ndeploy:") {
		t.Fatalf("deploy not created:\n%s", passwd)
	}
	fi, err := os.Stat(filepath.Join(root, "home/deploy/.ssh/authorized_keys"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("authorized_keys: %v %v", fi, err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid < 1000 {
		t.Errorf("authorized_keys owned by %d", st.Uid)
	}
	if sw, err := os.Stat(filepath.Join(root, "swapfile")); err != nil || sw.Mode().Perm() != 0o600 || !isSwapArea(filepath.Join(root, "swapfile")) {
		t.Errorf("swapfile: %v %v", sw, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "proc/sys/vm/swappiness")); string(b) != "10\n" {
		t.Errorf("swappiness live %q", b)
	}
	effs := effectiveFor(t, root, []string{"deploy"}, []string{"198.51.100.9"})
	if got := effs[0].All("port"); strings.Join(got, ",") != "22,2222" {
		t.Errorf("window ports %v, want both", got)
	}
	if _, err := os.Stat(filepath.Join(root, SysctlFile)); err == nil {
		t.Error("sysctl file written before confirm")
	}
	if _, err := change.NewStore(root).Rollback(context.Background(), m.ID, "test", change.RollbackOptions{Handlers: Handlers(nil)}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, before, treeHash(t, root))

	// Again, confirmed this time.
	m = apply(t, root, plan(t, root, in, Options{}))
	if _, err = change.NewStore(root).Confirm(context.Background(), m.ID, change.ConfirmOptions{Unattended: true, Handlers: Handlers(nil)}); err != nil {
		t.Fatal(err)
	}
	effs = effectiveFor(t, root, []string{"deploy"}, []string{"198.51.100.9"})
	if got := effs[0].All("port"); strings.Join(got, ",") != "2222" {
		t.Errorf("ports after confirm %v, want 2222 only", got)
	}
	fstab, _ := os.ReadFile(filepath.Join(root, "etc/fstab"))
	if !strings.Contains(string(fstab), "/swapfile none swap sw 0 0") {
		t.Errorf("fstab %q", fstab)
	}
	if b, err := os.ReadFile(filepath.Join(root, SysctlFile)); err != nil || !strings.Contains(string(b), "vm.swappiness = 10") {
		t.Errorf("sysctl file: %v\n%s", err, b)
	}
	// A plan now finds nothing left to do but what cannot be checked in a
	// fixture.
	p = plan(t, root, in, Options{})
	for _, s := range p.Steps {
		if !s.Empty() {
			t.Errorf("%s still has changes after confirm: %v", s.Layer, s.Summary)
		}
	}
}

func TestRefusals(t *testing.T) {
	lab.RequireTool(t, "sshd")
	root := fixtureRoot(t, "")
	os.Remove(filepath.Join(root, "home/ops/.ssh/authorized_keys"))
	refused := func(p *Plan, want string) {
		t.Helper()
		for _, r := range p.Refusals {
			if strings.Contains(r, want) {
				return
			}
		}
		t.Errorf("no refusal containing %q in %q", want, p.Refusals)
	}
	in := input()
	in.Host.Admin = AdminConfig{}
	refused(plan(t, root, in, Options{}), "nobody could log in with a key")

	// A key for deploy, but AllowUsers lets only ops in... and the admin
	// is always added, so this passes.
	in = input()
	in.SSH.AllowUsers = []string{"ops"}
	if p := plan(t, root, in, Options{}); len(p.Refusals) > 0 {
		t.Errorf("admin is added to AllowUsers, yet: %v", p.Refusals)
	}
	// AllowGroups the admin is in none of.
	in.SSH.AllowGroups = []string{"users"}
	refused(plan(t, root, in, Options{}), "in none of AllowGroups")

	// Stage 3 without a login over the VPN seen.
	in = input()
	in.SSH.Exposure = schema.ExposureVPN
	refused(plan(t, root, in, Options{}), "no login over the VPN has been seen")
	if p := plan(t, root, in, Options{Force: true}); len(p.Refusals) > 0 {
		t.Errorf("--force: %v", p.Refusals)
	}
	p := plan(t, root, in, Options{Session: "10.8.0.2 40000 10.8.0.1 22"})
	if len(p.Refusals) > 0 || !strings.Contains(p.SSH.VPNLogin, "this session") {
		t.Errorf("session over the VPN: %v %q", p.Refusals, p.SSH.VPNLogin)
	}
	if len(p.SSH.Listen) != 1 || p.SSH.Listen[0].String() != "10.8.0.1" {
		t.Errorf("listen %v, want the wg0 address", p.SSH.Listen)
	}
	os.MkdirAll(filepath.Join(root, "var/log"), 0o755)
	os.WriteFile(filepath.Join(root, "var/log/auth.log"), []byte("Jan  2 15:04:05 vps sshd[99]: Accepted publickey for deploy from 10.8.0.2 port 51000 ssh2: ED25519 SHA256:x\n"), 0o640)
	if p := plan(t, root, in, Options{}); len(p.Refusals) > 0 || !strings.Contains(p.SSH.VPNLogin, "auth.log") {
		t.Errorf("auth.log evidence: %v %q", p.Refusals, p.SSH.VPNLogin)
	}
	// Where journald runs, an auth.log line proves nothing: any local
	// user can write one (logger -t sshd 'Accepted … from VPN-ADDR').
	os.MkdirAll(filepath.Join(root, "run/systemd/journal"), 0o755)
	os.WriteFile(filepath.Join(root, "run/systemd/journal/socket"), nil, 0o644)
	refused(plan(t, root, in, Options{}), "no login over the VPN has been seen")
}

func TestAcceptedFromVPN(t *testing.T) {
	c := vpn.Config{Ranges: []schema.CIDR{schema.MustCIDR("100.64.0.0/10")}}
	log := `Jan  2 15:04:05 vps sshd[1]: Accepted publickey for deploy from 198.51.100.2 port 40000 ssh2
Jan  2 15:04:06 vps sshd[2]: Failed password for deploy from 100.64.0.9 port 40001 ssh2
Jan  2 15:04:07 vps sshd[3]: Accepted publickey for deploy from 100.100.1.2 port 40002 ssh2: ED25519 SHA256:abc
`
	if got := acceptedFromVPN([]byte(log), c); !strings.Contains(got, "100.100.1.2") {
		t.Errorf("got %q", got)
	}
	if got := acceptedFromVPN([]byte(log[:strings.Index(log, "Jan  2 15:04:07")]), c); got != "" {
		t.Errorf("a failure or a public login counted: %q", got)
	}
	// An attacker's user name spelling an Accepted line does not count.
	forged := "Jan  2 15:04:08 vps sshd[4]: Invalid user Accepted publickey for x from 100.64.0.5 port 1 ssh2 from 203.0.113.66 port 4444\n"
	if got := acceptedFromVPN([]byte(forged), c); got != "" {
		t.Errorf("forged line counted: %q", got)
	}
}
