package ruleset

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A document in nft's JSON input format reads like the listing the kernel
// gives back once it is loaded: the lockout check evaluates a candidate
// table before applying it.
func TestCommandDocument(t *testing.T) {
	const dir = "testdata/commands"
	cmds, err := ParseNFT(mustRead(t, filepath.Join(dir, "moat.json")))
	if err != nil {
		t.Fatal(err)
	}
	listed, err := ParseNFT(mustRead(t, filepath.Join(dir, "moat.list.json")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := shape(cmds), shape(listed); got != want {
		t.Errorf("commands read as\n%s\nthe kernel listed\n%s", got, want)
	}
	for _, p := range []Packet{in4(22), in4(80), in4(6379), in4(443), in6(80)} {
		banned := p
		banned.Saddr = netip.MustParseAddr("198.51.100.9")
		for _, q := range []Packet{p, banned} {
			if a, b := cmds.Evaluate(q, Pessimistic), listed.Evaluate(q, Pessimistic); a.Accepted != b.Accepted || a.Rule.Text != b.Rule.Text {
				t.Errorf("%s: commands %v, listing %v", describe(q), a, b)
			}
		}
	}
	fwd := Packet{Hook: HookForward, Proto: "tcp", Dport: 1}
	check(t, cmds, fwd, accepted.by("inet moat forward: policy accept"))
	if cmds.Table(FamilyInet, "old") != nil || len(cmds.Tables()) != 1 {
		t.Errorf("flush ruleset kept %d tables", len(cmds.Tables()))
	}

	// The lockout check's composition: the host without its moat table,
	// plus the candidate.
	host := loadCase(t, "default-drop").Merge(listed)
	candidate := host.Without(FamilyInet, "moat").Merge(cmds)
	if n := len(candidate.Tables()); n != 2 {
		t.Errorf("composed %d tables, want 2", n)
	}
	check(t, candidate, in4(8080), dropped.by("inet f input: policy drop"))
	check(t, cmds, in4(6379), dropped.by("inet moat input: tcp dport vmap @svc"))
	check(t, candidate, in4(80), accepted)
	check(t, candidate, in4(22), accepted)

	for _, bad := range []string{
		`{"nftables": [{"replace": {"rule": {}}}]}`,
		`{"nftables": [{"delete": {"rule": {}}}]}`,
		`{"nftables": [{"flush": {"element": {}}}]}`,
	} {
		if _, err := ParseNFT([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestCommandDocumentLoads checks the committed listing against the kernel.
func TestCommandDocumentLoads(t *testing.T) {
	requireRoot(t)
	requireTools(t, "ip", "nft")
	ns := newNetns(t, uniqueName("cmd"))
	ns.run(t, "nft", "-j", "-f", "testdata/commands/moat.json")
	got := capture(t, ns, "none")[".json"]
	file := "testdata/commands/moat.list.json"
	if os.Getenv("MOAT_UPDATE_CAPTURES") == "1" {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !sameCapture(".json", got, mustRead(t, file)) {
		t.Errorf("%s differs from the kernel's listing:\n%s", file, got)
	}
}

// shape lists tables, chains and rule texts.
func shape(rs *Ruleset) string {
	var b strings.Builder
	for _, tb := range rs.Tables() {
		for _, c := range tb.Chains {
			b.WriteString(chainName(c) + " " + string(c.Hook) + " " + c.Policy + "\n")
			for _, r := range c.Rules {
				b.WriteString("  " + r.Text + "\n")
			}
		}
	}
	return b.String()
}

func mustRead(t testing.TB, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
