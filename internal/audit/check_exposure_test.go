package audit

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/ruleset"
)

// exposureFacts is a host with two IPv4 and two IPv6 addresses on eth0 and
// the ruleset of doc (nft's JSON).
func exposureFacts(t *testing.T, doc string) *facts {
	t.Helper()
	rs, err := ruleset.ParseNFT([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f := &facts{notesSet: map[string]bool{}}
	f.ruleset = func() (*ruleset.Ruleset, error) { return rs, nil }
	f.routes = func() ([]host.Route, error) { return []host.Route{{Iface: "eth0"}}, nil }
	f.ifaces = func() ([]host.Interface, error) {
		var addrs []netip.Prefix
		for _, a := range []string{"203.0.113.10/24", "203.0.113.11/24", "2001:db8:10::10/64", "2001:db8:10::11/64", "fe80::1/64"} {
			addrs = append(addrs, netip.MustParsePrefix(a))
		}
		return []host.Interface{{Name: "lo", Index: 1, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}, {Name: "eth0", Index: 2, Addrs: addrs}}, nil
	}
	return f
}

func listener(addr string, v6only, known bool) host.Listener {
	return host.Listener{Proto: "tcp", Addr: netip.MustParseAddrPort(addr), V6Only: v6only, V6OnlyKnown: known}
}

const nftHeader = `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},`

// A rule dropping the port at the primary address hides nothing: the
// second address is judged too, and named.
func TestReachableEveryAddress(t *testing.T) {
	f := exposureFacts(t, nftHeader+`
		{"table": {"family": "inet", "name": "f", "handle": 1}},
		{"chain": {"family": "inet", "table": "f", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
		{"rule": {"family": "inet", "table": "f", "chain": "input", "handle": 2, "expr": [
			{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}},
			{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 6379}},
			{"drop": null}]}}]}`)
	r := f.reachable(listener("0.0.0.0:6379", false, true))
	if !r.ok || !r.certain || !strings.Contains(r.why, "203.0.113.11") || strings.Contains(r.why, "203.0.113.10") {
		t.Errorf("0.0.0.0:6379: %+v; want reachable at 203.0.113.11 only", r)
	}
	if r := f.reachable(listener("203.0.113.10:6379", false, true)); r.ok {
		t.Errorf("203.0.113.10:6379: %+v; want dropped", r)
	}
}

// A [::] socket with IPV6_V6ONLY takes no IPv4; without it, IPv4 too;
// unknown, IPv4 is possible but said to be uncertain. Evidence names each
// address once.
func TestReachableV6Only(t *testing.T) {
	f := exposureFacts(t, nftHeader+`
		{"table": {"family": "ip6", "name": "f", "handle": 1}},
		{"chain": {"family": "ip6", "table": "f", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}]}`)
	if r := f.reachable(listener("[::]:9000", true, true)); r.ok || strings.Contains(r.why, "IPv4") {
		t.Errorf("v6only [::]:9000 behind an IPv6 drop: %+v; want dropped, no IPv4", r)
	}
	r := f.reachable(listener("[::]:9000", false, true))
	if !r.ok || !r.certain {
		t.Errorf("dual-stack [::]:9000: %+v; want surely reachable over IPv4", r)
	}
	for _, a := range []string{"IPv4 203.0.113.10", "IPv4 203.0.113.11"} {
		if strings.Count(r.why, a) != 1 {
			t.Errorf("dual-stack [::]:9000: %q names %s %d times, want once", r.why, a, strings.Count(r.why, a))
		}
	}
	if strings.Contains(r.why, "fe80") {
		t.Errorf("link-local address judged: %s", r.why)
	}
	if r := f.reachable(listener("[::]:9000", false, false)); !r.ok || r.certain || !strings.Contains(r.why, "IPV6_V6ONLY unknown") {
		t.Errorf("[::]:9000 with V6ONLY unknown: %+v; want possibly reachable, uncertain", r)
	}
	// The 0.0.0.0 and [::] sockets of one daemon are one exposure: merged,
	// each address said once.
	for _, six := range []host.Listener{listener("[::]:9000", false, true), listener("[::]:9000", false, false)} {
		m := mergeReach(f.reachable(listener("0.0.0.0:9000", false, true)), f.reachable(six))
		if strings.Count(m.why, "IPv4 203.0.113.10") != 1 || !m.certain {
			t.Errorf("merged evidence repeats an address or lost certainty: %+v", m)
		}
	}
}

// nft 1.0.6 prints garbage in a dormant table's flags: the table may or
// may not be dormant, and the audit says it is unsure instead of calling
// the port dropped.
func TestReachableDormantGarbage(t *testing.T) {
	f := exposureFacts(t, nftHeader+`
		{"table": {"family": "inet", "name": "t", "handle": 1, "flags": "filter"}},
		{"chain": {"family": "inet", "table": "t", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}]}`)
	r := f.reachable(listener("0.0.0.0:6379", false, true))
	if !r.ok || r.certain || !strings.Contains(r.why, "dormant") {
		t.Errorf("behind a maybe-dormant table: %+v; want possibly reachable, uncertain, naming the table", r)
	}
}

// A SYN let in while the handshake's ACK is rejected reaches nothing (a
// state the differential harness found).
func TestReachableNeedsEstablished(t *testing.T) {
	f := exposureFacts(t, nftHeader+`
		{"table": {"family": "inet", "name": "f", "handle": 1}},
		{"chain": {"family": "inet", "table": "f", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
		{"rule": {"family": "inet", "table": "f", "chain": "input", "handle": 2, "expr": [
			{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}},
			{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 6379}},
			{"accept": null}]}}]}`)
	r := f.reachable(listener("0.0.0.0:6379", false, true))
	if r.ok || !r.certain || !strings.Contains(r.why, "established") {
		t.Errorf("SYN in, ACK dropped: %+v; want surely not reachable, blaming the later packets", r)
	}
}
