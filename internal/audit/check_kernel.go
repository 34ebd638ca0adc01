package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// sysctlRule is one hardened kernel setting. ok judges the current value;
// want says what it should be, for the evidence.
type sysctlRule struct {
	name string
	want string
	sev  Severity
	ok   func(v string, k *kernelCtx) (bool, string)
}

// kernelCtx is what makes the VPS-aware judgement: who needs forwarding,
// whether Tailscale wants loose reverse-path filtering, whether the WAN
// takes its IPv6 from router advertisements.
type kernelCtx struct {
	forwarders []string // docker, wireguard, tailscale
	tailscale  bool
	slaacWAN   bool
}

func eq(want string) func(string, *kernelCtx) (bool, string) {
	return func(v string, _ *kernelCtx) (bool, string) { return v == want, "" }
}

var sysctlRules = []sysctlRule{
	{"net.ipv4.tcp_syncookies", "1", Medium, eq("1")},
	{"net.ipv4.conf.all.accept_redirects", "0", Medium, eq("0")},
	{"net.ipv4.conf.default.accept_redirects", "0", Medium, eq("0")},
	{"net.ipv6.conf.all.accept_redirects", "0", Medium, eq("0")},
	{"net.ipv6.conf.default.accept_redirects", "0", Medium, eq("0")},
	{"net.ipv4.conf.all.secure_redirects", "0", Low, eq("0")},
	{"net.ipv4.conf.all.send_redirects", "0", Low, eq("0")},
	{"net.ipv4.conf.all.accept_source_route", "0", Medium, eq("0")},
	{"net.ipv6.conf.all.accept_source_route", "0", Medium, eq("0")},
	{"net.ipv4.conf.all.log_martians", "1", Low, eq("1")},
	{"net.ipv4.icmp_echo_ignore_broadcasts", "1", Low, eq("1")},
	{"net.ipv4.icmp_ignore_bogus_error_responses", "1", Low, eq("1")},
	{"net.ipv4.conf.all.rp_filter", "1 (2 with Tailscale)", Medium, func(v string, k *kernelCtx) (bool, string) {
		if k.tailscale {
			return v == "2" || v == "0", "Tailscale needs loose (2) reverse-path filtering"
		}
		return v == "1" || v == "2", ""
	}},
	{"net.ipv4.ip_forward", "0 (1 with Docker/WireGuard/Tailscale)", Medium, func(v string, k *kernelCtx) (bool, string) {
		if len(k.forwarders) > 0 {
			return true, "kept on for " + strings.Join(k.forwarders, ", ")
		}
		return v == "0", "nothing on this host routes packets"
	}},
	{"net.ipv6.conf.all.forwarding", "0 (1 with Docker/WireGuard/Tailscale)", Medium, func(v string, k *kernelCtx) (bool, string) {
		if len(k.forwarders) > 0 {
			return true, "kept on for " + strings.Join(k.forwarders, ", ")
		}
		return v == "0", ""
	}},
	{"net.ipv6.conf.default.accept_ra", "0 (kept on a SLAAC WAN)", Low, func(v string, k *kernelCtx) (bool, string) {
		if k.slaacWAN {
			return true, "the public interface takes its IPv6 address from router advertisements"
		}
		return v == "0", ""
	}},
	{"kernel.randomize_va_space", "2", Medium, eq("2")},
	{"kernel.kptr_restrict", "1 or 2", Low, func(v string, _ *kernelCtx) (bool, string) { return v == "1" || v == "2", "" }},
	{"kernel.dmesg_restrict", "1", Low, eq("1")},
	{"fs.protected_symlinks", "1", Low, eq("1")},
	{"fs.protected_hardlinks", "1", Low, eq("1")},
	{"fs.suid_dumpable", "0", Low, eq("0")},
}

func checkKernel(f *facts, o *out) {
	if v, err := f.virt(); err == nil && v.Container {
		o.na("KRN-001", fmt.Sprintf("inside a %s container (%s): the host's kernel settings apply", v.Kind, v.Signal))
		return
	}
	k := f.kernelContext()
	any := false
	for _, r := range sysctlRules {
		v, err := f.h.Sysctl(r.name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not in this kernel (e.g. no IPv6)
		}
		if err != nil {
			f.denied(err, "/proc/sys")
			continue
		}
		any = true
		ok, why := r.ok(v, k)
		ev := fmt.Sprintf("%s = %s (want %s)", r.name, v, r.want)
		if why != "" {
			ev += ": " + why
		}
		if ok {
			o.pass("KRN-001", r.name, ev)
		} else {
			o.failAt("KRN-001", r.sev, r.name, ev)
		}
	}
	if !any {
		o.unknown("KRN-001", errors.New("no sysctl under /proc/sys could be read"))
	}
}

func (f *facts) kernelContext() *kernelCtx {
	k := &kernelCtx{}
	if f.h.DockerPresent() || f.running("dockerd")["dockerd"] {
		k.forwarders = append(k.forwarders, "Docker")
	}
	if vifs, err := f.vpnIfaces(); err == nil {
		for _, v := range vifs {
			name := map[string]string{"tailscale": "Tailscale", "wireguard": "WireGuard"}[v.Kind]
			if name != "" && !slices.Contains(k.forwarders, name) {
				k.forwarders = append(k.forwarders, name)
			}
			k.tailscale = k.tailscale || v.Kind == "tailscale"
		}
	}
	if f.running("tailscaled")["tailscaled"] && !k.tailscale {
		k.tailscale = true
		k.forwarders = append(k.forwarders, "Tailscale")
	}
	for _, ifc := range f.publicIfaces() {
		if v, err := f.h.Sysctl("net.ipv6.conf." + ifc + ".accept_ra"); err == nil && v != "0" {
			if _, v6 := f.publicAddrs(); v6.IsValid() {
				k.slaacWAN = true
			}
		}
	}
	return k
}
