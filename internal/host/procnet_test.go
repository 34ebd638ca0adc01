package host

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseProcNet(t *testing.T) {
	for _, tc := range []struct {
		proto string
		want  []string // local remote state listening inode
	}{
		{"tcp", []string{
			"0.0.0.0:22 0.0.0.0:0 0A true 1001",
			"127.0.0.1:5432 0.0.0.0:0 0A true 1002",
			"203.0.113.5:443 0.0.0.0:0 0A true 1003",
			"203.0.113.5:22 198.51.100.7:54321 01 false 1004",
			"100.100.1.2:8080 0.0.0.0:0 0A true 1005",
			"10.0.0.1:8081 0.0.0.0:0 0A true 1006",
			"10.8.0.1:9100 0.0.0.0:0 0A true 1007",
			"127.0.0.1:5432 127.0.0.1:40000 06 false 1008",
		}},
		{"tcp6", []string{
			"[::]:22 [::]:0 0A true 2001",
			"[::1]:5432 [::]:0 0A true 2002",
			"[::ffff:0.0.0.0]:80 [::]:0 0A true 2003",
			"[::ffff:203.0.113.5]:8443 [::]:0 0A true 2004",
			"[2001:db8::5]:443 [::]:0 0A true 2005",
			"[2001:db8::5]:443 [2001:db8::99]:50000 01 false 2006",
		}},
		{"udp", []string{
			"0.0.0.0:68 0.0.0.0:0 07 true 3001",
			"127.0.0.53:53 0.0.0.0:0 07 true 3002",
			"203.0.113.5:40001 8.8.8.8:53 01 false 3003",
			"0.0.0.0:443 0.0.0.0:0 07 true 3004",
			"0.0.0.0:443 0.0.0.0:0 07 true 3005",
			"0.0.0.0:51820 0.0.0.0:0 07 true 0",
		}},
		{"udp6", []string{
			"[::]:5353 [::]:0 07 true 4001",
			"[fe80::1]:546 [::]:0 07 true 4002",
		}},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			f, err := os.Open(fixtureRoot + "/proc/net/" + tc.proto)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			socks, err := ParseProcNet(f, tc.proto)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range socks {
				if s.Proto != strings.TrimSuffix(tc.proto, "6") {
					t.Errorf("Proto = %q", s.Proto)
				}
				got = append(got, fmt.Sprintf("%s %s %02X %v %d", s.Local, s.Remote, s.State, s.Listening(), s.Inode))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestParseProcNetUID(t *testing.T) {
	in := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 1002 1 0000000000000000 100 0 0 10 0\n"
	socks, err := ParseProcNet(strings.NewReader(in), "tcp")
	if err != nil || len(socks) != 1 {
		t.Fatalf("ParseProcNet = %v, %v", socks, err)
	}
	want := Socket{Proto: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:5432"),
		Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: 0x0A, UID: 106, Inode: 1002}
	if socks[0] != want {
		t.Errorf("got %+v, want %+v", socks[0], want)
	}
}

func TestParseProcNetErrors(t *testing.T) {
	const ok = "0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1"
	for _, tc := range []struct{ name, proto, in string }{
		{"proto", "sctp", ""},
		{"few fields", "tcp", "0: 0100007F:1538 00000000:0000 0A\n"},
		{"v6 address in v4 file", "tcp", "0: 00000000000000000000000001000000:1538 00000000:0000 0A a b c 0 0 1\n"},
		{"bad hex", "tcp", "0: 0100007G:1538 00000000:0000 0A a b c 0 0 1\n"},
		{"no colon", "tcp", "0: 0100007F1538 00000000:0000 0A a b c 0 0 1\n"},
		{"long port", "tcp", "0: 0100007F:15380 00000000:0000 0A a b c 0 0 1\n"},
		{"bad state", "tcp", "0: 0100007F:1538 00000000:0000 XYZ a b c 0 0 1\n"},
		{"bad uid", "udp", "0: 0100007F:1538 00000000:0000 07 a b c -1 0 1\n"},
		{"bad inode", "udp", "0: 0100007F:1538 00000000:0000 07 a b c 0 0 x\n"},
		{"long line", "tcp", "0: " + ok + strings.Repeat(" 0", 40000) + "\n"},
	} {
		if _, err := ParseProcNet(strings.NewReader(tc.in), tc.proto); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	// An established TCP line with a bad address is skipped unread when
	// only listeners are wanted: the fast path must not decode it.
	n := 0
	err := parseProcNet(strings.NewReader("0: zz:zz zz:zz 01 a b c 0 0 1\n"), "tcp", true, func(Socket) { n++ })
	if err != nil || n != 0 {
		t.Errorf("listenOnly fast path: n=%d err=%v", n, err)
	}
}

func TestSocketInode(t *testing.T) {
	for in, want := range map[string]uint64{"socket:[12345]": 12345, "socket:[0]": 0} {
		if got, ok := socketInode([]byte(in)); !ok || got != want {
			t.Errorf("socketInode(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"socket:[]", "pipe:[1]", "socket:[12", "socket:[-1]", "/dev/null", ""} {
		if _, ok := socketInode([]byte(in)); ok {
			t.Errorf("socketInode(%q) ok", in)
		}
	}
}

func FuzzParseProcNet(f *testing.F) {
	for _, p := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(fixtureRoot + "/proc/net/" + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, p)
	}
	f.Add([]byte("0: 0100007F:1538 00000000:0000 0A a b c 0 0 1"), "tcp")
	f.Fuzz(func(t *testing.T, data []byte, proto string) {
		socks, err := ParseProcNet(strings.NewReader(string(data)), proto)
		if err != nil {
			return
		}
		for _, s := range socks {
			if !s.Local.IsValid() || !s.Remote.IsValid() {
				t.Fatalf("invalid address in %+v", s)
			}
			if s.Local.Addr().Is4() != (proto == "tcp" || proto == "udp") {
				t.Fatalf("family mismatch for %s: %+v", proto, s)
			}
		}
		// The listening fast path agrees with the full parse.
		var fast []Socket
		if err := parseProcNet(strings.NewReader(string(data)), proto, true, func(s Socket) { fast = append(fast, s) }); err != nil {
			t.Fatalf("fast path failed where the full parse did not: %v", err)
		}
		var slow []Socket
		for _, s := range socks {
			if s.Listening() {
				slow = append(slow, s)
			}
		}
		if fmt.Sprint(fast) != fmt.Sprint(slow) {
			t.Fatalf("fast path %v != full parse %v", fast, slow)
		}
	})
}
