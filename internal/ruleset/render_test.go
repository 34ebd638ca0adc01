package ruleset

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestRender pins how every rule of every case reads in reports.
func TestRender(t *testing.T) {
	var b strings.Builder
	for _, name := range caseNames(t) {
		fmt.Fprintf(&b, "== %s\n", name)
		for _, tb := range loadCase(t, name).Tables() {
			for _, c := range tb.Chains {
				if c.Base() {
					fmt.Fprintf(&b, "%s: type %s hook %s priority %d; %s\n", chainName(c), c.Type, c.Hook, c.Priority, ref(c, nil).Text)
				}
				for _, r := range c.Rules {
					fmt.Fprintln(&b, ref(c, r))
				}
			}
		}
	}
	const golden = "testdata/render.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRender -update)", err)
	}
	if b.String() != string(want) {
		t.Errorf("renderings differ from %s (run go test -run TestRender -update and review the diff):\n%s", golden, b.String())
	}
}

func TestRenderDetails(t *testing.T) {
	tests := []struct{ expr, want string }{
		{m("==", `{"&": [{"meta": {"key": "mark"}}, 255]}`, `1`), "meta mark & 255 == 1"},
		{m("!=", iifname, `"wg0"`), `iifname != "wg0"`},
		{m("==", ipSaddr, `{"set": ["10.0.0.1", {"prefix": {"addr": "10.1.0.0", "len": 16}}, {"range": ["10.2.0.1", "10.2.0.9"]}]}`), "ip saddr { 10.0.0.1, 10.1.0.0/16, 10.2.0.1-10.2.0.9 }"},
		{m("==", `{"fib": {"result": "oif", "flags": ["saddr", "iif"]}}`, `false`), "fib saddr . iif oif missing"},
		{m("in", ctState, `["established", "related"]`), "ct state established,related"},
		{`{"dnat": {"family": "ip6", "addr": "fd00::1", "port": 80}}`, "dnat to [fd00::1]:80"},
		{`{"limit": {"rate": 10, "per": "second", "inv": true}}`, "limit rate over 10/second"},
		{`{"vmap": {"key": ` + tcpDport + `, "data": {"set": [[22, {"accept": null}], [23, {"jump": {"target": "x"}}]]}}}`, "tcp dport vmap { 22 : accept, 23 : jump x }"},
		{`{"set": {"op": "add", "elem": ` + ipSaddr + `, "set": "@f", "stmt": [{"limit": {"rate": 5, "per": "second"}}]}}`, "add @f { ip saddr limit rate 5/second }"},
		{`{"xt": {"type": "match", "name": "conntrack"}}`, "xt match conntrack"},
		{m("==", `{"payload": {"base": "th", "offset": 16, "len": 8}}`, `1`), "@th,16,8 1"},
	}
	for _, tt := range tests {
		k, v, _ := single([]byte(tt.expr))
		if got := render(k, v); got != tt.want {
			t.Errorf("render %s = %q, want %q", tt.expr, got, tt.want)
		}
	}
	long := strings.Repeat("é", 200)
	if got := clip(long); len(got) > 245 || !strings.HasSuffix(got, "…") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("clip: %q", got)
	}
}
