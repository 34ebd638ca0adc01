package ban_test

// Kernel tests: the ban store and enforcer against real nftables sets in a
// lab namespace, through the firewall's netlink sets (adapted here as the
// daemon adapts them).

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/lab"
)

// kset is the daemon's adapter, minus its reconnects.
type kset struct{ s *firewall.Sets }

func (k kset) Add(ctx context.Context, elems []ban.SetElement) error {
	fe := make([]firewall.Element, len(elems))
	for i, e := range elems {
		fe[i] = firewall.Element{Prefix: e.Prefix, Timeout: e.Timeout}
	}
	return k.s.Ban(ctx, fe)
}

func (k kset) Delete(ctx context.Context, ps []netip.Prefix) error { return k.s.Unban(ctx, ps) }

func (k kset) List(ctx context.Context) ([]ban.SetElement, error) {
	els, err := k.s.Bans(ctx)
	out := make([]ban.SetElement, len(els))
	for i, e := range els {
		out[i] = ban.SetElement{Prefix: e.Prefix, Timeout: e.Expires}
	}
	return out, err
}

const banTable = `table inet moat {
	set ban4 { type ipv4_addr; flags interval, timeout; }
	set ban6 { type ipv6_addr; flags interval, timeout; }
}
`

// kernelSets returns netlink sets on a fresh table inet moat in a lab host.
func kernelSets(t *testing.T) (*lab.Host, *firewall.Sets) {
	t.Helper()
	lab.RequireTool(t, "nft")
	h := lab.New(t).Host("vps")
	f := filepath.Join(t.TempDir(), "table.nft")
	os.WriteFile(f, []byte(banTable), 0o600)
	h.MustRun(t, "nft", "-f", f)
	var s *firewall.Sets
	if err := h.Do(func() (err error) { s, err = firewall.NewSets(128); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return h, s
}

func addrN(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }

func kernelHas(t *testing.T, s *firewall.Sets) map[netip.Prefix]bool {
	t.Helper()
	els, err := s.Bans(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[netip.Prefix]bool{}
	for _, e := range els {
		m[e.Prefix] = true
	}
	return m
}

// TestLostStoreNeverLiftsKernelBans: whatever happens to moat.db between
// two runs (emptied, deleted, overwritten, damaged pages, a bad row), the
// next start-up reconcile lifts no ban from the kernel and the store
// learns them back.
func TestLostStoreNeverLiftsKernelBans(t *testing.T) {
	const n = 300
	for _, tc := range []struct {
		name      string
		damage    func(path string) error
		recovered string // in Store.Recovered; "" for none
	}{
		{"truncated to 0", func(p string) error { return os.Truncate(p, 0) }, ""},
		{"deleted", os.Remove, ""},
		{"truncated mid-page", func(p string) error { return os.Truncate(p, 5000) }, "ban store"},
		{"bad header", func(p string) error {
			return os.WriteFile(p, []byte(strings.Repeat("not sqlite at all ", 400)), 0o600)
		}, "bad header"},
		{"bad pages", func(p string) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, _ := f.Stat()
			junk := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
			for off := int64(4096); off < fi.Size(); off += 8192 {
				f.WriteAt(junk, off)
			}
			return nil
		}, "ban store"},
		{"unparseable prefix row", func(p string) error {
			s, err := ban.Open(p, ban.Options{})
			if err != nil {
				return err
			}
			defer s.Close()
			return s.ExecForTest(`UPDATE bans SET prefix = '198.18.0.7/33' WHERE prefix = '198.18.0.7/32'`)
		}, "unreadable prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			_, sets := kernelSets(t)
			path := filepath.Join(t.TempDir(), "moat.db")
			s, err := ban.Open(path, ban.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := ban.NewEnforcer(s, kset{sets}, ban.EnforcerOptions{})
			var bans []ban.Ban
			for i := range n {
				b := ban.Ban{Prefix: netip.PrefixFrom(addrN(i), 32), Jail: "sshd", Expires: time.Now().Add(time.Hour)}
				if i%10 == 0 {
					b.Expires = time.Time{} // some permanent
				}
				bans = append(bans, b)
			}
			if _, err := e.Apply(ctx, bans); err != nil {
				t.Fatal(err)
			}
			s.Close()
			// Also flush the WAL into the file, as a clean stop does.
			if err := tc.damage(path); err != nil {
				t.Fatal(err)
			}
			os.Remove(path + "-wal")
			os.Remove(path + "-shm")

			s, err = ban.Open(path, ban.Options{})
			if err != nil {
				t.Fatalf("open after %s: %v", tc.name, err)
			}
			defer s.Close()
			if got := s.Recovered(); (tc.recovered == "") != (got == "") || !strings.Contains(got, tc.recovered) {
				t.Errorf("recovered = %q, want mention of %q", got, tc.recovered)
			}
			if tc.recovered != "" {
				aside, _ := filepath.Glob(path + ".corrupt-*")
				if len(aside) == 0 {
					t.Error("the damaged store was not kept aside")
				}
			}
			e = ban.NewEnforcer(s, kset{sets}, ban.EnforcerOptions{})
			r, err := e.Reconcile(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.Removed != 0 {
				t.Errorf("reconcile removed %d kernel bans", r.Removed)
			}
			have := kernelHas(t, sets)
			for i := range n {
				p := netip.PrefixFrom(addrN(i), 32)
				if !have[p] {
					t.Fatalf("%s lifted from the kernel (reconcile %+v)", p, r)
				}
				if !s.Contains(p.Addr()) {
					t.Fatalf("%s not known to the store after reconcile (%+v)", p, r)
				}
			}
			// A second reconcile agrees with itself, and survives a
			// restart: the adopted bans are on disk.
			if r, err := e.Reconcile(ctx); err != nil || r.Adopted != 0 || r.Removed != 0 {
				t.Errorf("second reconcile %+v %v", r, err)
			}
			act, err := s.Active(ctx)
			if err != nil || len(act) != n {
				t.Errorf("active after rebuild: %d %v", len(act), err)
			}
		})
	}
}

// TestUnbanTombstoneSurvivesRestart: a ban lifted in the store whose
// kernel element could not be deleted is deleted by the next reconcile,
// not adopted back.
func TestUnbanTombstoneSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	_, sets := kernelSets(t)
	path := filepath.Join(t.TempDir(), "moat.db")
	s, err := ban.Open(path, ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("198.18.9.9/32")
	if _, err := ban.NewEnforcer(s, kset{sets}, ban.EnforcerOptions{}).Apply(ctx, []ban.Ban{{Prefix: p, Expires: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	// The kernel refuses the delete: the store's unban stands.
	if _, err := ban.NewEnforcer(s, failingDelete{kset{sets}}, ban.EnforcerOptions{}).Unban(ctx, p); !errors.Is(err, ban.ErrKernel) {
		t.Fatalf("unban with a failing kernel: %v, want ErrKernel", err)
	}
	s.Close()
	s, err = ban.Open(path, ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := ban.NewEnforcer(s, kset{sets}, ban.EnforcerOptions{}).Reconcile(ctx)
	if err != nil || r.Removed != 1 || r.Adopted != 0 {
		t.Fatalf("reconcile %+v %v, want the unbanned element removed", r, err)
	}
	if kernelHas(t, sets)[p] || s.Contains(p.Addr()) {
		t.Fatal("an unbanned address came back")
	}
}

type failingDelete struct{ kset }

func (failingDelete) Delete(context.Context, []netip.Prefix) error {
	return errors.New("netlink: no such table")
}

// TestStoreFullDiskKeepsEnforcing: with the state directory on a full
// tmpfs, every decision still reaches the kernel, Health reports the
// unsaved decisions, and they are written once space comes back.
func TestStoreFullDiskKeepsEnforcing(t *testing.T) {
	ctx := context.Background()
	_, sets := kernelSets(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		lab.Require(t, false, fmt.Sprintf("mount a tmpfs: %v", err))
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "moat.db")
	s, err := ban.Open(path, ban.Options{RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := ban.NewEnforcer(s, kset{sets}, ban.EnforcerOptions{})
	// Fill the disk.
	filler := filepath.Join(dir, "filler")
	f, _ := os.Create(filler)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	const n = 4000
	for i := 0; i < n; i += 100 {
		var batch []ban.Ban
		for j := i; j < i+100; j++ {
			batch = append(batch, ban.Ban{Prefix: netip.PrefixFrom(addrN(j), 32), Jail: "sshd", Reason: "5 failures",
				Expires: time.Now().Add(time.Hour)})
		}
		if _, err := e.Apply(ctx, batch); err != nil {
			t.Fatalf("apply on a full disk: %v", err)
		}
	}
	h := s.Health()
	if h.Unsaved == 0 || h.Err == "" {
		t.Fatalf("health on a full disk: %+v", h)
	}
	t.Logf("health on a full disk: %d unsaved, %s", h.Unsaved, h.Err)
	have := kernelHas(t, sets)
	for i := range n {
		if p := netip.PrefixFrom(addrN(i), 32); !have[p] || !s.Contains(p.Addr()) {
			t.Fatalf("%s not enforced on a full disk (kernel %v)", p, have[p])
		}
	}
	// An unban meanwhile is kept too.
	gone := netip.PrefixFrom(addrN(7), 32)
	if l, err := e.Unban(ctx, gone); err != nil || len(l) != 1 {
		t.Fatalf("unban on a full disk: %v %v", l, err)
	}
	if act, err := s.Active(ctx); err != nil || len(act) != n-1 {
		t.Fatalf("active on a full disk: %d %v", len(act), err)
	}

	// Space comes back: everything is written, without a new decision.
	os.Remove(filler)
	deadline := time.Now().Add(20 * time.Second)
	for s.Health().Unsaved > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not written after the disk came back: %+v", s.Health())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = ban.Open(path, ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	act, err := s.Active(ctx)
	if err != nil || len(act) != n-1 {
		t.Fatalf("after restart: %d bans, %v; want %d", len(act), err, n-1)
	}
	if s.Contains(gone.Addr()) || !s.Tombstoned(gone) {
		t.Error("the unban made on a full disk was lost")
	}
	if hist, _ := s.History(ctx, ban.HistoryQuery{}); len(hist) != n {
		t.Errorf("history holds %d bans, want %d", len(hist), n)
	}
}

// BenchmarkApplyOne is one decision through the Enforcer: the kernel set
// first (one netlink transaction), then the store (one SQLite
// transaction), into 10,000 bans. BenchmarkApplyKernelOnly is the kernel
// half alone, for the split.
func BenchmarkApplyOne(b *testing.B) {
	benchApply(b, true)
}

func BenchmarkApplyKernelOnly(b *testing.B) {
	benchApply(b, false)
}

func benchApply(b *testing.B, store bool) {
	lab.RequireTool(b, "nft")
	h := lab.New(b).Host("vps")
	f := filepath.Join(b.TempDir(), "table.nft")
	os.WriteFile(f, []byte(banTable), 0o600)
	h.MustRun(b, "nft", "-f", f)
	var sets *firewall.Sets
	if err := h.Do(func() (err error) { sets, err = firewall.NewSets(128); return err }); err != nil {
		b.Fatal(err)
	}
	defer sets.Close()
	ctx := context.Background()
	s, err := ban.Open(filepath.Join(b.TempDir(), "moat.db"), ban.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	e := ban.NewEnforcer(s, kset{sets}, ban.EnforcerOptions{KernelGrace: ban.DefaultKernelGrace})
	var pre []ban.Ban
	for i := range 10_000 {
		pre = append(pre, ban.Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{20, 0, byte(i >> 8), byte(i)}), 32), Expires: time.Now().Add(time.Hour)})
	}
	if _, err := e.Apply(ctx, pre); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)}), 32)
		i++
		if store {
			if _, err := e.Apply(ctx, []ban.Ban{{Prefix: p, Jail: "sshd", Expires: time.Now().Add(time.Hour)}}); err != nil {
				b.Fatal(err)
			}
		} else if err := (kset{sets}).Add(ctx, []ban.SetElement{{Prefix: p, Timeout: time.Hour}}); err != nil {
			b.Fatal(err)
		}
	}
}
