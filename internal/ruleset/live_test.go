package ruleset

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// fakeSystem answers live() from maps: a missing tool is absent from out.
type fakeSystem struct {
	out   map[string]string
	fail  map[string]error
	files map[string]string
}

func (f fakeSystem) lookPath(name string) (string, error) {
	if _, ok := f.out[name]; ok {
		return "/usr/sbin/" + name, nil
	}
	if _, ok := f.fail[name]; ok {
		return "/usr/sbin/" + name, nil
	}
	return "", exec.ErrNotFound
}

func (f fakeSystem) run(_ context.Context, path string, _ ...string) ([]byte, error) {
	name := strings.TrimPrefix(path, "/usr/sbin/")
	if err := f.fail[name]; err != nil {
		return nil, err
	}
	return []byte(f.out[name]), nil
}

// kernel fails: these cases exercise the JSON fallback.
func (f fakeSystem) kernel() (*Ruleset, error) { return nil, errors.New("netlink: not in this test") }

func (f fakeSystem) readFile(name string) ([]byte, error) {
	if s, ok := f.files[name]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}

const emptyJSON = `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}`

func TestLiveErrors(t *testing.T) {
	tests := []struct {
		name string
		sys  fakeSystem
		err  string
	}{
		{"no nft", fakeSystem{}, "install nftables"},
		{"not root", fakeSystem{fail: map[string]error{"nft": errors.New("exit status 1: Error: cache initialization failed: Operation not permitted")}}, "run as root"},
		{"bad json", fakeSystem{out: map[string]string{"nft": "Error: syntax error"}}, "parse nft json"},
		{"legacy tables without the tool", fakeSystem{
			out:   map[string]string{"nft": emptyJSON},
			files: map[string]string{"/proc/thread-self/net/ip_tables_names": "filter\nnat\n"},
		}, "holds iptables-legacy tables (filter, nat) but iptables-legacy-save is missing"},
		{"legacy output broken", fakeSystem{
			out:   map[string]string{"nft": emptyJSON, "iptables-legacy-save": "*filter\n"},
			files: map[string]string{"/proc/thread-self/net/ip_tables_names": "filter\n"},
		}, "no COMMIT"},
	}
	for _, tt := range tests {
		_, err := live(context.Background(), tt.sys)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestLiveSources(t *testing.T) {
	sources := func(rs *Ruleset) string {
		var out []string
		for _, tb := range rs.Tables() {
			out = append(out, string(tb.Family)+" "+tb.Name+" "+string(tb.Source))
		}
		return strings.Join(out, ", ")
	}
	if got := sources(loadCase(t, "docker")); got != "inet host nft, ip nat iptables-nft, ip filter iptables-nft" {
		t.Errorf("docker: %s", got)
	}
	if got := sources(loadCase(t, "legacy")); got != "inet mine nft, ip filter iptables-legacy, ip6 filter iptables-legacy" {
		t.Errorf("legacy: %s", got)
	}

	// Without iptables-nft-save, or when it disagrees, nft's view stays.
	js := string(readCase(t, "docker.json"))
	for _, sys := range []fakeSystem{
		{out: map[string]string{"nft": js}},
		{out: map[string]string{"nft": js, "iptables-nft-save": "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"}},
		{out: map[string]string{"nft": js, "iptables-nft-save": "garbage"}},
		{out: map[string]string{"nft": js}, fail: map[string]error{"iptables-nft-save": errors.New("exit status 1")}},
	} {
		rs, err := live(context.Background(), sys)
		if err != nil {
			t.Fatal(err)
		}
		if got := sources(rs); got != "inet host nft, ip nat nft, ip filter nft" {
			t.Errorf("lossy docker: %s", got)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := live(ctx, fakeSystem{out: map[string]string{"nft": js}, fail: map[string]error{"iptables-nft-save": errors.New("signal: killed")}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestLiveInNamespace runs the real Live inside a namespace holding nft,
// iptables-nft and iptables-legacy rules at once.
func TestLiveInNamespace(t *testing.T) {
	requireRoot(t)
	requireTools(t, "ip", "nft", "iptables-nft-restore", "iptables-legacy-restore", "iptables-nft-save", "iptables-legacy-save")
	ns := newNetns(t, uniqueName("live"))
	loadInto(t, ns, "legacy")
	ns.run(t, "iptables-nft-restore", caseDir+"/docker.rules")
	var rs *Ruleset
	if err := ns.do(func() (err error) {
		rs, err = Live(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tb := range rs.Tables() {
		got = append(got, string(tb.Family)+" "+tb.Name+" "+string(tb.Source))
	}
	want := "inet mine nft, ip nat iptables-nft, ip filter iptables-nft, ip filter iptables-legacy, ip6 filter iptables-legacy"
	if strings.Join(got, ", ") != want {
		t.Errorf("tables: %s\nwant   %s", strings.Join(got, ", "), want)
	}
	check(t, rs, in4(443), dropped.by("inet mine"))
	check(t, rs, in4(22), accepted.by("iptables-legacy"))
}

// The kernel holds only INPUT of an iptables-nft table while
// iptables-nft-save prints FORWARD and OUTPUT too: the JSON fallback still
// takes INPUT's full text, so multiport drops are certain, and the
// evidence names the rule, not another table's policy.
func TestLiveCompatChainByChain(t *testing.T) {
	rs := loadCase(t, "xt-input-only")
	p := Packet{Hook: HookInput, IIf: "eth0", Saddr: netip.MustParseAddr("10.77.0.1"), Daddr: netip.MustParseAddr("10.77.0.2"), Proto: "tcp", Dport: 6379}
	v := rs.Evaluate(p, Optimistic)
	if v.Accepted || !v.Certain || !strings.Contains(v.Rule.Text, "multiport --dports 6379,8080") {
		t.Errorf("6379: %v; want surely dropped by the multiport rule", v)
	}
	p.Dport = 443
	if v := rs.Evaluate(p, Optimistic); !v.Accepted || !v.Certain {
		t.Errorf("443: %v; want surely accepted", v)
	}
}
