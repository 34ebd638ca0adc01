package ruleset

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Live reads the ruleset of the running host (the caller's network
// namespace): `nft -j list ruleset`, with the tables iptables-nft manages
// re-read through iptables-nft-save where nft's JSON shows their matches
// only as "xt match NAME", plus the x_tables rules of iptables-legacy when
// the kernel holds any.
func Live(ctx context.Context) (*Ruleset, error) {
	return live(ctx, host{})
}

// system is what Live needs from the host; tests replace it.
type system interface {
	lookPath(name string) (string, error)
	run(ctx context.Context, path string, args ...string) ([]byte, error)
	readFile(name string) ([]byte, error)
}

type host struct{}

// lookPath also searches the sbin directories, which a non-login PATH
// often lacks.
func (host) lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if fi, serr := os.Stat(filepath.Join(dir, name)); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Join(dir, name), nil
		}
	}
	return "", err
}
func (host) readFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (host) run(ctx context.Context, path string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, clip(msg))
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

// legacyTables are where the kernel lists loaded x_tables tables. The
// thread-self view follows a thread that entered another namespace.
var legacyTables = []struct {
	family     Family
	names, bin string
}{
	{FamilyIP, "/proc/thread-self/net/ip_tables_names", "iptables-legacy-save"},
	{FamilyIP6, "/proc/thread-self/net/ip6_tables_names", "ip6tables-legacy-save"},
}

func live(ctx context.Context, sys system) (*Ruleset, error) {
	nft, err := sys.lookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("read ruleset: nft not found: %w (install nftables: apt install nftables)", err)
	}
	out, err := sys.run(ctx, nft, "-j", "list", "ruleset")
	if err != nil {
		hint := "is nftables installed and working?"
		if strings.Contains(err.Error(), "Operation not permitted") || os.Geteuid() != 0 {
			hint = "run as root"
		}
		return nil, fmt.Errorf("read ruleset: nft -j list ruleset: %w (%s)", err, hint)
	}
	rs, err := ParseNFT(out)
	if err != nil {
		return nil, fmt.Errorf("read ruleset: %w", err)
	}
	for _, fam := range []Family{FamilyIP, FamilyIP6} {
		if err := replaceCompat(ctx, sys, rs, fam); err != nil {
			return nil, err
		}
	}
	for _, l := range legacyTables {
		names, err := sys.readFile(l.names)
		if err != nil || len(bytes.TrimSpace(names)) == 0 {
			continue // no legacy tables loaded
		}
		bin, err := sys.lookPath(l.bin)
		if err != nil {
			return nil, fmt.Errorf("read ruleset: the kernel holds iptables-legacy tables (%s) but %s is missing: %w (install iptables)",
				strings.Join(strings.Fields(string(names)), ", "), l.bin, err)
		}
		out, err := sys.run(ctx, bin)
		if err != nil {
			return nil, fmt.Errorf("read ruleset: %s: %w (run as root)", l.bin, err)
		}
		legacy, err := ParseIptablesSave(string(out), l.family)
		if err != nil {
			return nil, fmt.Errorf("read ruleset: %s: %w", l.bin, err)
		}
		rs = rs.Merge(legacy)
	}
	return rs, nil
}

// replaceCompat swaps nft's view of iptables-nft tables that hold xt
// expressions (whose options nft's JSON drops) for iptables-nft-save's full
// text. When that fails the lossy view stays: its xt matches are unknown,
// which keeps answers sound, only less certain.
func replaceCompat(ctx context.Context, sys system, rs *Ruleset, fam Family) error {
	need := false
	for _, t := range rs.tables {
		need = need || t.Family == fam && t.compat
	}
	if !need {
		return nil
	}
	name := "iptables-nft-save"
	if fam == FamilyIP6 {
		name = "ip6tables-nft-save"
	}
	bin, err := sys.lookPath(name)
	if err != nil {
		return nil
	}
	out, err := sys.run(ctx, bin)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("read ruleset: %s: %w", name, ctx.Err())
		}
		return nil
	}
	ipt, err := parseIptablesSave(string(out), fam, SourceIptablesNFT)
	if err != nil {
		return nil
	}
	for i, t := range rs.tables {
		if t.Family != fam || !t.compat {
			continue
		}
		for _, repl := range ipt.tables {
			if repl.Name == t.Name && sameChains(t, repl) {
				repl.Handle = t.Handle
				rs.tables[i] = repl
			}
		}
	}
	return nil
}

// sameChains checks that both views hold the same chains, so the swap
// cannot lose one (iptables-nft-save skips what it cannot represent).
func sameChains(a, b *Table) bool {
	if len(a.Chains) != len(b.Chains) {
		return false
	}
	for _, c := range a.Chains {
		d := b.chains[c.Name]
		if d == nil || len(d.Rules) != len(c.Rules) || d.Hook != c.Hook || d.policy() != c.policy() {
			return false
		}
	}
	return true
}
