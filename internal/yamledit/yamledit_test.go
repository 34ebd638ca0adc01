package yamledit

import (
	"errors"
	"strings"
	"testing"
)

const commented = `# moat.yaml — a commented config
ssh:
  port: 22          # sshd's port
  exposure: public  # stage 1

# The firewall.
firewall:
  public:
    - 80/tcp    # web
    - 443/tcp   # web, TLS
  vpn: [5432/tcp, 9090/tcp]   # databases
  allow:
    # the office
    - ports: [8443/tcp]
      sources: ['198.51.100.0/24']
    - ports:
        - 9000/udp
        - 9001/udp
      sources: [203.0.113.7]

guard:
  jails:
    sshd:
      mode: aggressive
`

// edited checks that out is src with exactly the lines of want changed:
// every other byte is the same, in order.
func edited(t *testing.T, out []byte, want string) {
	t.Helper()
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if _, err := Parse(out); err != nil {
		t.Errorf("the edit is not YAML: %v", err)
	}
}

func parse(t *testing.T, src string) *Doc {
	t.Helper()
	d, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSetScalarKeepsTheRest(t *testing.T) {
	out, err := parse(t, commented).SetScalar([]string{"ssh", "exposure"}, "vpn")
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, strings.Replace(commented, "  exposure: public  # stage 1", "  exposure: vpn  # stage 1", 1))

	// Missing key in an existing mapping: added at its end.
	out, err = parse(t, commented).SetScalar([]string{"ssh", "rate_limit"}, "5/min")
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, strings.Replace(commented, "  exposure: public  # stage 1\n", "  exposure: public  # stage 1\n  rate_limit: 5/min\n", 1))

	// Missing section: added at the end of the file.
	out, err = parse(t, commented).SetScalar([]string{"vpn", "ranges"}, "[100.64.0.0/10]")
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, commented+"vpn:\n  ranges: [100.64.0.0/10]\n")

	// Quoted values are replaced whole.
	src := "ssh:\n  exposure: \"vpn+public\" # x\n"
	out, err = parse(t, src).SetScalar([]string{"ssh", "exposure"}, "vpn")
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, "ssh:\n  exposure: vpn # x\n")
}

func TestAppendKeepsTheRest(t *testing.T) {
	for _, tc := range []struct {
		path []string
		item []string
		from string
		to   string
	}{
		{[]string{"firewall", "public"}, []string{"8080/tcp"},
			"    - 443/tcp   # web, TLS\n", "    - 443/tcp   # web, TLS\n    - 8080/tcp\n"},
		{[]string{"firewall", "vpn"}, []string{"9100/tcp"},
			"  vpn: [5432/tcp, 9090/tcp]   # databases", "  vpn: [5432/tcp, 9090/tcp, 9100/tcp]   # databases"},
		{[]string{"firewall", "allow", "0", "ports"}, []string{"8444/tcp"},
			"    - ports: [8443/tcp]\n", "    - ports: [8443/tcp, 8444/tcp]\n"},
		{[]string{"firewall", "allow", "1", "ports"}, []string{"9002/udp"},
			"        - 9001/udp\n", "        - 9001/udp\n        - 9002/udp\n"},
		{[]string{"firewall", "allow"}, []string{"ports: [22/tcp]", "sources: ['2001:db8::/32']"},
			"      sources: [203.0.113.7]\n", "      sources: [203.0.113.7]\n    - ports: [22/tcp]\n      sources: ['2001:db8::/32']\n"},
	} {
		out, err := parse(t, commented).Append(tc.path, tc.item)
		if err != nil {
			t.Fatalf("%v: %v", tc.path, err)
		}
		if !strings.Contains(commented, tc.from) {
			t.Fatalf("bad case %q", tc.from)
		}
		edited(t, out, strings.Replace(commented, tc.from, tc.to, 1))
	}
	// A missing list is created, in block style.
	out, err := parse(t, "firewall:\n  log_drops: true\n").Append([]string{"firewall", "vpn"}, []string{"9100/tcp"})
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, "firewall:\n  log_drops: true\n  vpn:\n    - 9100/tcp\n")
	// An empty file.
	out, err = parse(t, "").Append([]string{"firewall", "public"}, []string{"80/tcp"})
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, "firewall:\n  public:\n    - 80/tcp\n")
}

func TestRemoveKeepsTheRest(t *testing.T) {
	out, err := parse(t, commented).Remove([]string{"firewall", "public"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, strings.Replace(commented, "    - 80/tcp    # web\n", "", 1))

	out, err = parse(t, commented).Remove([]string{"firewall", "vpn"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, strings.Replace(commented, "[5432/tcp, 9090/tcp]", "[5432/tcp]", 1))

	// The whole first allow rule (its comment above stays: it is the
	// operator's).
	out, err = parse(t, commented).Remove([]string{"firewall", "allow"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, strings.Replace(commented, "    - ports: [8443/tcp]\n      sources: ['198.51.100.0/24']\n", "", 1))

	// The last item of a block list leaves [] (null would mean the
	// default list).
	src := "firewall:\n  public:   # open\n    - 80/tcp\n  log_drops: true\n"
	out, err = parse(t, src).Remove([]string{"firewall", "public"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	edited(t, out, "firewall:\n  public: []   # open\n  log_drops: true\n")
}

func TestByHandShapesAreRefused(t *testing.T) {
	for _, src := range []string{
		"firewall:\n  vpn: [5432/tcp,\n    9090/tcp]\n",
		"x: &a\n  public: [80/tcp]\nfirewall: *a\n",
		"{firewall: {public: [80/tcp]}}\n",
		"- a\n- b\n",
	} {
		d, err := Parse([]byte(src))
		if err != nil {
			continue
		}
		if _, err := d.Append([]string{"firewall", "vpn"}, []string{"1/tcp"}); err == nil {
			if _, err2 := d.Append([]string{"firewall", "public"}, []string{"1/tcp"}); err2 == nil {
				t.Errorf("%q: edited a shape the editor cannot keep", src)
			}
		}
	}
}

func TestQuote(t *testing.T) {
	for s, want := range map[string]string{
		"80/tcp": "80/tcp", "2001:db8::/32": "'2001:db8::/32'", "::1": "'::1'", "yes": "'yes'", "a#b": "'a#b'", "it's": "'it''s'",
	} {
		if got := Quote(s); got != want {
			t.Errorf("Quote(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestSetBlockKeepsTheRest: replacing a block mapping changes its lines
// only — the key's comment, the neighbours, blank lines and alignment of
// the rest of the file stay byte for byte.
func TestSetBlockKeepsTheRest(t *testing.T) {
	src := "# top\nssh:\n  port: 22            # aligned\n\nvpn:\n  interfaces: [tailscale0]\n  wireguard:   # managed\n    interface: wg0\n    # old comment\n    port: 51820\n  ranges: [10.0.0.0/8]\n\nguard:\n  enabled: true\n"
	d, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.SetBlock([]string{"vpn", "wireguard"}, []string{"interface: wg0", "port: 51821", "peers:", "  - name: laptop"})
	if err != nil {
		t.Fatal(err)
	}
	want := "# top\nssh:\n  port: 22            # aligned\n\nvpn:\n  interfaces: [tailscale0]\n  wireguard:   # managed\n    interface: wg0\n    port: 51821\n    peers:\n      - name: laptop\n  ranges: [10.0.0.0/8]\n\nguard:\n  enabled: true\n"
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	// Absent: added under its parent, created when missing.
	d, _ = Parse([]byte("ssh:\n  port: 22\n"))
	out, err = d.SetBlock([]string{"vpn", "wireguard"}, []string{"interface: wg0"})
	if err != nil || string(out) != "ssh:\n  port: 22\nvpn:\n  wireguard:\n    interface: wg0\n" {
		t.Fatalf("absent: %v\n%s", err, out)
	}
	// "key:" with nothing.
	d, _ = Parse([]byte("vpn:\n  wireguard:  # soon\nssh:\n  port: 22\n"))
	out, err = d.SetBlock([]string{"vpn", "wireguard"}, []string{"interface: wg0"})
	if err != nil || string(out) != "vpn:\n  wireguard:  # soon\n    interface: wg0\nssh:\n  port: 22\n" {
		t.Fatalf("empty key: %v\n%s", err, out)
	}
	// A flow mapping is beyond the editor.
	d, _ = Parse([]byte("vpn:\n  wireguard: {interface: wg0}\n"))
	if _, err := d.SetBlock([]string{"vpn", "wireguard"}, []string{"interface: wg1"}); !errors.Is(err, ErrByHand) {
		t.Fatalf("flow mapping: %v", err)
	}
}
