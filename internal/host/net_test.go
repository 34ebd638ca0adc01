package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClassifyAddr(t *testing.T) {
	vpn := []netip.Prefix{netip.MustParsePrefix("10.8.0.1/32")}
	for in, want := range map[string]Scope{
		"127.0.0.1":            ScopeLoopback,
		"127.3.2.1":            ScopeLoopback,
		"::1":                  ScopeLoopback,
		"::ffff:127.0.0.1":     ScopeLoopback,
		"0.0.0.0":              ScopeWildcard,
		"::":                   ScopeWildcard,
		"::ffff:0.0.0.0":       ScopeWildcard,
		"10.1.2.3":             ScopePrivate,
		"172.17.0.1":           ScopePrivate,
		"192.168.1.10":         ScopePrivate,
		"fd00::1":              ScopePrivate,
		"fe80::1":              ScopePrivate,
		"169.254.169.254":      ScopePrivate,
		"100.64.0.1":           ScopeVPN,
		"100.127.255.254":      ScopeVPN,
		"fd7a:115c:a1e0::1234": ScopeVPN,
		"10.8.0.1":             ScopeVPN, // on a VPN interface, though RFC 1918
		"10.8.0.2":             ScopePrivate,
		"100.128.0.1":          ScopePublic,
		"203.0.113.5":          ScopePublic,
		"2001:db8::5":          ScopePublic,
		"::ffff:203.0.113.5":   ScopePublic,
	} {
		if got := ClassifyAddr(netip.MustParseAddr(in), vpn); got != want {
			t.Errorf("ClassifyAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestInterfacesFixture(t *testing.T) {
	ifs, err := New(fixtureRoot).Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 7 {
		t.Fatalf("%d interfaces", len(ifs))
	}
	eth0 := ifs[1]
	if eth0.Name != "eth0" || eth0.Index != 2 || !eth0.Up || eth0.Flags != net.FlagUp|net.FlagBroadcast|net.FlagRunning|net.FlagMulticast ||
		fmt.Sprint(eth0.Addrs) != "[203.0.113.5/24 2001:db8::5/64 fe80::1/64]" {
		t.Errorf("eth0 = %+v", eth0)
	}
	if ifs[2].Up {
		t.Errorf("eth1 up: %+v", ifs[2])
	}
	if _, err := New(t.TempDir()).Interfaces(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fixture without interfaces.json: %v", err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".fixture"), 0o755)
	for _, bad := range []string{`{}`, `[{"name":"x","flags":["sideways"]}]`, `[{"name":"x","addrs":["10.0.0.1"]}]`} {
		os.WriteFile(filepath.Join(dir, ".fixture/interfaces.json"), []byte(bad), 0o644)
		if _, err := New(dir).Interfaces(); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestInterfacesLive(t *testing.T) {
	ifs, err := New("").Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 {
			continue
		}
		for _, p := range ifi.Addrs {
			if p.String() == "127.0.0.1/8" {
				return
			}
		}
		t.Errorf("loopback %+v without 127.0.0.1/8", ifi)
	}
	t.Errorf("no loopback with 127.0.0.1/8 in %+v", ifs)
}

func TestDefaultRoutes(t *testing.T) {
	rs, err := New(fixtureRoot).DefaultRoutes()
	if err != nil {
		t.Fatal(err)
	}
	// eth1's default is a reject route; lo's IPv6 entries are not defaults.
	if got := fmt.Sprint(rs); got != "[{eth0 203.0.113.1 100} {eth0 fe80::1 1024}]" {
		t.Errorf("DefaultRoutes = %s", got)
	}
	if _, err := New("").DefaultRoutes(); err != nil {
		t.Errorf("live: %v", err)
	}
	if _, err := parseRoute([]byte("eth0 0000000G 0 1 0 0 0 0\n")); err == nil {
		t.Error("bad route accepted")
	}
	if _, err := parseIPv6Route([]byte(strings.Repeat("0", 34) + " 00 a b c d e f g h\n")); err == nil {
		t.Error("bad ipv6 route accepted")
	}
}

func TestVPNInterfaces(t *testing.T) {
	h := New(fixtureRoot)
	vs, err := h.VPNInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, fmt.Sprintf("%s:%s:%v:%v", v.Name, v.Kind, v.Up, v.Addrs))
	}
	want := "tailscale0:tailscale:true:[100.100.1.2/32 fd7a:115c:a1e0::1234/128] wg0:wireguard:true:[10.8.0.1/24] vpn0:wireguard:true:[10.9.0.1/24]"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	ps, err := h.VPNPrefixes()
	if err != nil || fmt.Sprint(ps) != "[100.100.1.2/32 fd7a:115c:a1e0::1234/128 10.8.0.1/32 10.9.0.1/32]" {
		t.Errorf("VPNPrefixes = %v, %v", ps, err)
	}
}

func TestDockerPublishedFixtureFile(t *testing.T) {
	h := New(fixtureRoot)
	if !h.DockerPresent() {
		t.Error("DockerPresent false")
	}
	ps, err := h.DockerPublished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%s %s %s %d->%d/%s %s", p.Container, p.Image, p.HostIP, p.HostPort, p.ContainerPort, p.Proto, p.Scope))
	}
	want := []string{
		"web nginx:1.25 0.0.0.0 8080->80/tcp wildcard",
		"web nginx:1.25 :: 8080->80/tcp wildcard",
		"db postgres:16 127.0.0.1 5433->5432/tcp loopback",
		"dns coredns 100.100.1.2 53->53/udp vpn",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	empty := New(t.TempDir())
	if ps, err := empty.DockerPublished(context.Background()); ps != nil || err != nil || empty.DockerPresent() {
		t.Errorf("no docker: %v, %v", ps, err)
	}
}

// TestDockerPublishedSocket serves a fake Docker API on a unix socket in a
// fixture root and checks the HTTP path.
func TestDockerPublishedSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "dk") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "var/run/docker.sock")
	os.MkdirAll(filepath.Dir(sock), 0o755)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	status := http.StatusOK
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/containers/json" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, `[{"Id":"abc","Names":["/app"],"Image":"app:1","Ports":[{"IP":"203.0.113.5","PrivatePort":3000,"PublicPort":3000,"Type":"tcp"}]}]`)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	ps, err := New(dir).DockerPublished(context.Background())
	if err != nil || len(ps) != 1 || ps[0].Container != "app" || ps[0].HostIP.String() != "203.0.113.5" || ps[0].Scope != ScopePublic {
		t.Errorf("DockerPublished = %+v, %v", ps, err)
	}
	status = http.StatusInternalServerError
	if _, err := New(dir).DockerPublished(context.Background()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("server error: %v", err)
	}
}

func TestDockerBadJSON(t *testing.T) {
	for _, in := range []string{`{`, `[{"Ports":[{"IP":"nope","PublicPort":1}]}]`} {
		if _, err := parseDockerContainers([]byte(in)); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func FuzzParseRoutes(f *testing.F) {
	for _, p := range []string{"/proc/net/route", "/proc/net/ipv6_route"} {
		b, err := os.ReadFile(fixtureRoot + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) ([]Route, error){parseRoute, parseIPv6Route} {
			rs, err := parse(data)
			if err != nil {
				continue
			}
			for _, r := range rs {
				if r.Iface == "" || r.Iface == "lo" && r.Gateway.Is6() {
					t.Fatalf("bad route %+v", r)
				}
			}
		}
	})
}
