package ruleset

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseIptablesSaveErrors(t *testing.T) {
	tests := []struct{ name, text, family, err string }{
		{"family", "", "inet", "want ip or ip6"},
		{"rule outside a table", "-A INPUT -j DROP\n", "ip", "line 1: \"-A INPUT -j DROP\" outside a table"},
		{"no commit", "*filter\n:INPUT DROP [0:0]\n", "ip", "table filter has no COMMIT"},
		{"nested table", "*filter\n*nat\n", "ip", "line 2: table filter not committed"},
		{"stray commit", "COMMIT\n", "ip", "line 1: COMMIT outside a table"},
		{"quote", "*filter\n-A INPUT -m comment --comment \"open\n", "ip", "unterminated quote"},
		{"command", "*filter\n-X INPUT\nCOMMIT\n", "ip", "unknown command \"-X\""},
		{"chain line", "*filter\n:INPUT\nCOMMIT\n", "ip", "chain line"},
	}
	for _, tt := range tests {
		_, err := ParseIptablesSave(tt.text, Family(tt.family))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	got, err := splitArgs(`-A INPUT -m comment --comment "say \"hi\" \\ there" -j LOG --log-prefix "[UFW BLOCK] "`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-A", "INPUT", "-m", "comment", "--comment", `say "hi" \ there`, "-j", "LOG", "--log-prefix", "[UFW BLOCK] "}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}

// TestIptablesOptions checks each option the parser understands against a
// packet, one rule at a time in a default-drop INPUT chain.
func TestIptablesOptions(t *testing.T) {
	udp := in4(53)
	udp.Proto = "udp"
	wg := in4(22)
	wg.IIf = "wg1"
	est := in4(22)
	est.State = StateEstablished
	inv := in4(22)
	inv.State = StateInvalid
	fwd := Packet{Hook: HookForward, IIf: "eth0", OIf: "docker0", Saddr: outside4, Daddr: netip.MustParseAddr("172.17.0.2"), Proto: "tcp", Sport: 40000, Dport: 80, DNAT: true}
	v6 := in6(22)

	tests := []struct {
		rule   string
		family Family
		p      Packet
		w      want
	}{
		{"-A INPUT -p tcp -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p udp -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT ! -p udp -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p 6 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p all -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -s 198.51.100.0/24 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -s 198.51.100.0/255.255.255.128 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -s 198.51.100.128/25 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT ! -s 198.51.100.7/32 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -s 10.0.0.1,198.51.100.7 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -d 203.0.113.1/32 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m iprange --src-range 198.51.100.1-198.51.100.9 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -s 2001:db8:1::/48 -j ACCEPT", FamilyIP6, v6, accepted},
		{"-A INPUT -i eth0 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -i wg+ -j ACCEPT", FamilyIP, wg, accepted},
		{"-A INPUT -i wg+ -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT ! -i lo -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -o docker0 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p tcp -m tcp --dport 20:30 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p tcp -m tcp --dport 1024: -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -p tcp -m tcp ! --dport 22 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -p tcp -m tcp --sport 40000 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p tcp -m tcp --dport ssh -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p udp -m udp --dport 53 -j ACCEPT", FamilyIP, udp, accepted},
		{"-A INPUT -p udp -m udp --dport 53 -j ACCEPT", FamilyIP, in4(53), dropped},
		{"-A INPUT -p tcp -m multiport --dports 80,443,20:25 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -p udp -m multiport --dports 22 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -p tcp -m multiport ! --dports 80,443 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p tcp -m tcp --syn -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p tcp -m tcp ! --syn -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -p tcp -m tcp --tcp-flags SYN,ACK ACK -j ACCEPT", FamilyIP, est, accepted},
		{"-A INPUT -m conntrack --ctstate NEW -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", FamilyIP, est, accepted},
		{"-A INPUT -m conntrack ! --ctstate INVALID -j ACCEPT", FamilyIP, inv, dropped},
		{"-A INPUT -m conntrack ! --ctstate INVALID -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m state --state NEW -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT", FamilyIP, fwd, accepted},
		{"-A FORWARD -m conntrack --ctstate NEW,DNAT -j ACCEPT", FamilyIP, fwd, uncertain},
		{"-A INPUT -m addrtype --dst-type LOCAL -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m addrtype --dst-type BROADCAST -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -m addrtype --src-type LOCAL -j ACCEPT", FamilyIP, in4(22), uncertain},
		{"-A INPUT -m pkttype --pkt-type host -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m limit --limit 3/min --limit-burst 10 -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m hashlimit --hashlimit-upto 5/sec --hashlimit-name x -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m hashlimit --hashlimit-above 5/sec --hashlimit-name x -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -m connlimit --connlimit-above 10 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -m recent --set --name x -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m recent --update --seconds 30 --hitcount 6 --name x -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -m recent --rcheck --name blocklist -j ACCEPT", FamilyIP, in4(22), uncertain},
		{"-A INPUT -m rpfilter -j ACCEPT", FamilyIP, in4(22), accepted},
		{"-A INPUT -m rpfilter --invert -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -m comment --comment \"let it in\" -j ACCEPT", FamilyIP, in4(22), accepted.by("let it in")},
		{"-A INPUT -m set --match-set allow src -j ACCEPT", FamilyIP, in4(22), uncertain.by("--match-set")},
		{"-A INPUT -m mark --mark 0x1 -j ACCEPT", FamilyIP, in4(22), uncertain},
		{"-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -f -j ACCEPT", FamilyIP, in4(22), dropped},
		{"-A INPUT -j LOG --log-prefix \"x \"", FamilyIP, in4(22), dropped},
		{"-A INPUT -j NFQUEUE --queue-num 1", FamilyIP, in4(22), uncertain},
		{"-A INPUT -j CUSTOM", FamilyIP, in4(22), accepted.by("-A CUSTOM -j ACCEPT")},
		{"-A INPUT -g CUSTOM", FamilyIP, in4(22), accepted},
		{"-A INPUT -j NOSUCHCHAIN", FamilyIP, in4(22), uncertain},
		{"[3:180] -A INPUT -c 1 2 -p tcp -j ACCEPT", FamilyIP, in4(22), accepted},
	}
	for _, tt := range tests {
		text := "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:CUSTOM - [0:0]\n" + tt.rule + "\n-A CUSTOM -j ACCEPT\nCOMMIT\n"
		rs, err := ParseIptablesSave(text, tt.family)
		if err != nil {
			t.Errorf("%s: %v", tt.rule, err)
			continue
		}
		t.Run(tt.rule, func(t *testing.T) { check(t, rs, tt.p, tt.w) })
	}
}

func TestIptablesTables(t *testing.T) {
	rs, err := ParseIptablesSave(string(readCase(t, "docker.nft-save")), FamilyIP)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tb := range rs.Tables() {
		for _, c := range tb.Chains {
			if c.Base() {
				got = append(got, tb.Name+"/"+c.Name+"/"+string(c.Hook)+"/"+c.Type+"/"+c.Policy)
			}
		}
	}
	want := "filter/INPUT/input/filter/accept filter/FORWARD/forward/filter/drop filter/OUTPUT/output/filter/accept " +
		"nat/PREROUTING/prerouting/nat/accept nat/INPUT/input/nat/accept nat/OUTPUT/output/nat/accept nat/POSTROUTING/postrouting/nat/accept"
	if strings.Join(got, " ") != want {
		t.Errorf("base chains:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if tb := rs.Table(FamilyIP, "filter"); tb.Source != SourceIptablesLegacy || tb.Chain("DOCKER") == nil || tb.Chain("DOCKER").Base() {
		t.Errorf("filter table %+v", tb)
	}
}
