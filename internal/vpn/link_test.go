package vpn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/moat-sh/moat/internal/lab"
)

// TestChooseImpl: kernel WireGuard when the kernel creates the interface,
// wireguard-go when it cannot for want of the module, an error (no quiet
// fallback) when the kernel refuses for another reason.
func TestChooseImpl(t *testing.T) {
	calls := 0
	kernel := func(err error) func(string) error {
		return func(string) error { calls++; return err }
	}
	for _, tc := range []struct {
		name      string
		userspace bool
		kernel    error
		want      Implementation
		wantErr   bool
	}{
		{name: "module present", want: Kernel},
		{name: "module absent", kernel: fmt.Errorf("netlink receive: %w", unix.EOPNOTSUPP), want: Userspace},
		{name: "no such device type", kernel: unix.EINVAL, want: Userspace},
		{name: "name taken", kernel: unix.EEXIST, wantErr: true},
		{name: "not root", kernel: unix.EPERM, wantErr: true},
		{name: "asked for userspace", userspace: true, kernel: errors.New("must not be called"), want: Userspace},
	} {
		calls = 0
		got, why, err := chooseImpl("wg0", tc.userspace, kernel(tc.kernel))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: %q (%s), err %v", tc.name, got, why, err)
		}
		if tc.userspace && calls != 0 {
			t.Errorf("%s: the kernel was asked", tc.name)
		}
	}
}

// TestChooseImplRealKernel asks this machine's kernel, in a lab namespace:
// whatever it answers (CI has no WireGuard module: EOPNOTSUPP) is
// classified as a choice, not an error, and a kernel interface it creates
// is really one.
func TestChooseImplRealKernel(t *testing.T) {
	lab.RequireRoot(t)
	h := lab.New(t).Host("vps")
	var impl Implementation
	var why string
	err := h.Do(func() (err error) {
		impl, why, err = chooseImpl("wgk0", false, addKernelLink)
		return err
	})
	if err != nil {
		t.Fatalf("the kernel's answer was an error, not a choice: %v", err)
	}
	t.Logf("this kernel: %s (%s)", impl, why)
	if impl == Kernel {
		out := h.MustRun(t, "ip", "-d", "link", "show", "wgk0")
		if !strings.Contains(string(out), "wireguard") {
			t.Errorf("the kernel interface is not WireGuard:\n%s", out)
		}
	}
}

// ipAddr is one interface of `ip -j addr show`.
type ipAddr struct {
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	AddrInfo []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

// TestSetAddressesOverNetlink brings a wireguard-go interface up in a lab
// namespace and sets it over rtnetlink: the addresses, MTU, state and
// routes read back the same through netlink and through `ip -j`. A second
// call with other addresses and peer networks leaves exactly those, and a
// route someone else added stays.
func TestSetAddressesOverNetlink(t *testing.T) {
	lab.RequireRoot(t)
	_, err := os.Stat("/dev/net/tun")
	lab.Require(t, err == nil, "needs /dev/net/tun for wireguard-go")
	lab.RequireTool(t, "ip")
	h := lab.New(t).Host("vps")
	name := fmt.Sprintf("wgn%d", os.Getpid()%100000) // UAPI sockets are per machine
	var dev *Device
	if err := h.Do(func() (err error) {
		dev, err = Up(context.Background(), name, UpOptions{Userspace: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })

	v4, v6 := netip.MustParsePrefix("10.42.7.1/24"), netip.MustParsePrefix("fd42:7::1/64")
	site := netip.MustParsePrefix("192.168.50.0/24")
	set := func(addrs, extra []netip.Prefix) {
		t.Helper()
		if err := h.Do(func() error { return SetAddresses(name, addrs, extra) }); err != nil {
			t.Fatal(err)
		}
	}
	readBack := func() (nl, ip []netip.Prefix, mtu int, up bool, routes []netip.Prefix) {
		t.Helper()
		if err := h.Do(func() error {
			index, err := linkIndex(name)
			if err != nil {
				return err
			}
			r, err := dialRTNL()
			if err != nil {
				return err
			}
			defer r.Close()
			if nl, err = r.addrs(index); err != nil {
				return err
			}
			routes, err = r.ownRoutes(index)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var ifs []ipAddr
		if err := json.Unmarshal(h.MustRun(t, "ip", "-j", "addr", "show", "dev", name), &ifs); err != nil || len(ifs) != 1 {
			t.Fatalf("ip -j addr: %v %v", err, ifs)
		}
		for _, a := range ifs[0].AddrInfo {
			if a.Scope == "link" {
				continue
			}
			ip = append(ip, netip.PrefixFrom(netip.MustParseAddr(a.Local), a.Prefixlen))
		}
		nl = slices.DeleteFunc(nl, func(p netip.Prefix) bool { return p.Addr().IsLinkLocalUnicast() })
		return nl, ip, ifs[0].MTU, slices.Contains(ifs[0].Flags, "UP"), routes
	}

	set([]netip.Prefix{v4, v6}, []netip.Prefix{site, netip.MustParsePrefix("10.42.7.0/24")})
	nl, ip, mtu, up, routes := readBack()
	if fmt.Sprint(nl) != fmt.Sprint([]netip.Prefix{v4, v6}) || fmt.Sprint(ip) != fmt.Sprint(nl) {
		t.Errorf("addresses: netlink %v, ip %v, want [%s %s]", nl, ip, v4, v6)
	}
	if mtu != MTU || !up {
		t.Errorf("mtu %d up %v, want %d up", mtu, up, MTU)
	}
	if fmt.Sprint(routes) != fmt.Sprint([]netip.Prefix{site}) {
		t.Errorf("moat's routes through %s: %v, want [%s] (the subnet comes with the address)", name, routes, site)
	}
	if out := h.MustRun(t, "ip", "route", "show", "192.168.50.0/24"); !strings.Contains(string(out), "192.168.50.0/24 dev "+name+" proto 92") {
		t.Errorf("ip route: %s", out)
	}

	// Someone else's route through the interface stays; moat's own stale
	// one goes, as does an address no longer configured.
	h.MustRun(t, "ip", "route", "add", "192.168.99.0/24", "dev", name)
	v4b := netip.MustParsePrefix("10.43.0.1/24")
	set([]netip.Prefix{v4b}, nil)
	nl, ip, _, _, routes = readBack()
	if fmt.Sprint(nl) != fmt.Sprint([]netip.Prefix{v4b}) || fmt.Sprint(ip) != fmt.Sprint(nl) {
		t.Errorf("after the change: netlink %v, ip %v, want [%s]", nl, ip, v4b)
	}
	if len(routes) != 0 {
		t.Errorf("stale routes kept: %v", routes)
	}
	if out := h.MustRun(t, "ip", "route", "show", "192.168.99.0/24"); !strings.Contains(string(out), "192.168.99.0/24 dev "+name) {
		t.Errorf("another's route was removed: %q", out)
	}
	// Peers changing: SyncRoutes alone.
	if err := h.Do(func() error { return SyncRoutes(name, []netip.Prefix{site}) }); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, routes = readBack(); fmt.Sprint(routes) != fmt.Sprint([]netip.Prefix{site}) {
		t.Errorf("after SyncRoutes: %v", routes)
	}
}
