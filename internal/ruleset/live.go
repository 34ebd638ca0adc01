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
// namespace). The kernel is asked over netlink (Kernel): what it evaluates,
// flags and xt match data included. Rule texts for reports come from `nft -j
// list ruleset` and, for iptables-nft's chains, from iptables-nft-save. Only
// when netlink cannot be read does nft's JSON become the model, with the
// tables iptables-nft manages re-read chain by chain through
// iptables-nft-save where nft's JSON shows their matches only as "xt match
// NAME". The x_tables rules of iptables-legacy are added when the kernel
// holds any.
func Live(ctx context.Context) (*Ruleset, error) {
	return live(ctx, host{})
}

// system is what Live needs from the host; tests replace it.
type system interface {
	lookPath(name string) (string, error)
	run(ctx context.Context, path string, args ...string) ([]byte, error)
	readFile(name string) ([]byte, error)
	kernel() (*Ruleset, error)
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
func (host) kernel() (*Ruleset, error)            { return Kernel() }

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
	rs, kerr := sys.kernel()
	if kerr == nil {
		nftTexts(ctx, sys, rs)
		for _, fam := range []Family{FamilyIP, FamilyIP6} {
			if err := replaceCompat(ctx, sys, rs, fam); err != nil {
				return nil, err
			}
		}
	} else {
		var err error
		if rs, err = liveJSON(ctx, sys); err != nil {
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

// liveJSON reads the ruleset from `nft -j list ruleset`: the fallback when
// netlink cannot be read.
func liveJSON(ctx context.Context, sys system) (*Ruleset, error) {
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
	return rs, nil
}

// nftTexts gives the rules read over netlink nft's own text, matched by
// handle; without nft they keep the text rendered from their expressions.
func nftTexts(ctx context.Context, sys system, rs *Ruleset) {
	nft, err := sys.lookPath("nft")
	if err != nil {
		return
	}
	// Terse: set elements (100,000 bans take nft seconds to print) are
	// read over netlink already.
	out, err := sys.run(ctx, nft, "-j", "-t", "list", "ruleset")
	if err != nil {
		return
	}
	js, err := ParseNFT(out)
	if err != nil {
		return
	}
	for _, t := range rs.tables {
		jt := js.Table(t.Family, t.Name)
		if jt == nil {
			continue
		}
		for _, c := range t.Chains {
			jc := jt.chains[c.Name]
			if jc == nil {
				continue
			}
			texts := map[uint64]string{}
			for _, r := range jc.Rules {
				texts[r.Handle] = r.Text
			}
			for _, r := range c.Rules {
				if txt, ok := texts[r.Handle]; ok && txt != "" {
					r.Text = txt
				}
			}
		}
	}
}

// replaceCompat reads iptables-nft-save for the tables that hold xt
// expressions. For a table read over netlink its lines only become the
// rules' texts (the kernel's match data decides); for one read from nft's
// JSON, whose xt matches lost their options, the parsed lines replace the
// rules. Either way chain by chain: a chain is taken only where both views
// agree on its hook, policy and number of rules, so nothing iptables-nft-save
// cannot represent is lost, and one odd chain does not spoil the others.
// When the tool fails the table stays as read: its unknown xt matches keep
// answers sound, only less certain.
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
	for _, t := range rs.tables {
		if t.Family != fam || !t.compat {
			continue
		}
		for _, repl := range ipt.tables {
			if repl.Name != t.Name {
				continue
			}
			all := true
			for _, c := range t.Chains {
				d := repl.chains[c.Name]
				if d == nil || len(d.Rules) != len(c.Rules) || d.Hook != c.Hook || c.Hook != "" && d.policy() != c.policy() {
					all = false
					continue
				}
				for i, r := range c.Rules {
					if r.prog != nil {
						r.Text = d.Rules[i].Text
						continue
					}
					d.Rules[i].Handle = r.Handle
					c.Rules[i] = d.Rules[i]
				}
			}
			if all {
				t.Source = SourceIptablesNFT // every chain as iptables-nft-save prints it
			}
		}
	}
	return nil
}
