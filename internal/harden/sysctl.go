package harden

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/vpn"
)

// SysctlFile is moat's sysctl.d file; 60- sorts after the distribution's
// own (10-, 50-) and before local overrides (99-).
const SysctlFile = "/etc/sysctl.d/60-moat.conf"

// Setting is one kernel parameter with the reason moat sets it.
type Setting struct {
	Key, Value, Why string
}

// SysctlFacts is what the VPS-aware set depends on.
type SysctlFacts struct {
	// Forwarding keeps IP forwarding on; ForwardingWhy names who needs it.
	Forwarding    bool
	ForwardingWhy string
	// Tailscale wants loose reverse path filtering (its exit nodes and
	// subnet routes arrive asymmetrically).
	Tailscale bool
	// SLAACWAN names the internet-facing interface when it gets its IPv6
	// address from router advertisements: those must keep coming.
	SLAACWAN string
	// VPNOnly: sshd listens on VPN addresses only, which must bind before
	// the VPN is up at boot.
	VPNOnly bool
	// Managed is false when host.sysctl.disabled: only swappiness, the
	// bind setting and the extras are written.
	Managed    bool
	Swappiness *int
	Extra      map[string]string
}

// SysctlSettings returns the settings for the facts, in file order.
func SysctlSettings(f SysctlFacts) []Setting {
	var s []Setting
	add := func(why string, kv ...string) {
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, Setting{Key: kv[i], Value: kv[i+1], Why: why})
			why = ""
		}
	}
	if f.Managed {
		rp := "1"
		why := "Drop packets whose source would not be routed back the way they came (anti-spoofing)."
		if f.Tailscale {
			rp, why = "2", "Loose reverse path filtering: Tailscale's routes are asymmetric, strict mode drops them."
		}
		add(why, "net.ipv4.conf.all.rp_filter", rp, "net.ipv4.conf.default.rp_filter", rp)
		add("Ignore ICMP redirects: a host does not let the network rewrite its routes.",
			"net.ipv4.conf.all.accept_redirects", "0", "net.ipv4.conf.default.accept_redirects", "0",
			"net.ipv4.conf.all.secure_redirects", "0", "net.ipv4.conf.default.secure_redirects", "0",
			"net.ipv6.conf.all.accept_redirects", "0", "net.ipv6.conf.default.accept_redirects", "0")
		add("Send no redirects: this host is not the network's router.",
			"net.ipv4.conf.all.send_redirects", "0", "net.ipv4.conf.default.send_redirects", "0")
		add("Refuse source-routed packets.",
			"net.ipv4.conf.all.accept_source_route", "0", "net.ipv4.conf.default.accept_source_route", "0",
			"net.ipv6.conf.all.accept_source_route", "0", "net.ipv6.conf.default.accept_source_route", "0")
		add("SYN cookies when the backlog fills (SYN floods).", "net.ipv4.tcp_syncookies", "1")
		add("No smurf amplification, no log noise from bogus ICMP errors.",
			"net.ipv4.icmp_echo_ignore_broadcasts", "1", "net.ipv4.icmp_ignore_bogus_error_responses", "1")
		if !f.Forwarding {
			add("Not a router: no IP forwarding (nothing here needs it: no Docker, WireGuard or Tailscale found).",
				"net.ipv4.ip_forward", "0", "net.ipv6.conf.all.forwarding", "0")
		}
		switch {
		case f.SLAACWAN != "" && f.Forwarding:
			add("The WAN ("+f.SLAACWAN+") gets its IPv6 address from router advertisements, and forwarding stops accepting them unless accept_ra is 2.",
				"net.ipv6.conf."+sysctlIface(f.SLAACWAN)+".accept_ra", "2")
		case f.SLAACWAN != "":
			// Router advertisements are kept as the kernel has them.
		default:
			add("Ignore router advertisements on new interfaces: this host's addresses are static.",
				"net.ipv6.conf.default.accept_ra", "0")
		}
		add("Kernel pointers and the kernel log are for root only.", "kernel.kptr_restrict", "1", "kernel.dmesg_restrict", "1")
		add("A process may trace only its own children.", "kernel.yama.ptrace_scope", "1")
		add("No core dumps of setuid programs.", "fs.suid_dumpable", "0")
		add("Links and files in sticky world-writable directories (/tmp) cannot be turned against their readers.",
			"fs.protected_hardlinks", "1", "fs.protected_symlinks", "1", "fs.protected_fifos", "1", "fs.protected_regular", "2")
	}
	if f.VPNOnly {
		add("sshd listens on the VPN address only: let it bind before the VPN is up at boot.",
			"net.ipv4.ip_nonlocal_bind", "1", "net.ipv6.ip_nonlocal_bind", "1")
	}
	if f.Swappiness != nil {
		add("Swap only under pressure (host.swap.swappiness).", "vm.swappiness", strconv.Itoa(*f.Swappiness))
	}
	if len(f.Extra) > 0 {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range f.Extra {
				if !yield(k) {
					return
				}
			}
		})
		why := "host.sysctl.extra, as written."
		for _, k := range keys {
			add(why, k, f.Extra[k])
			why = ""
		}
	}
	return s
}

// sysctlIface writes an interface name for a dotted sysctl key (a dot in
// the name, as in a VLAN eth0.100, becomes a slash).
func sysctlIface(name string) string { return strings.ReplaceAll(name, ".", "/") }

// RenderSysctl is the sysctl.d file.
func RenderSysctl(source string, settings []Setting) string {
	var b strings.Builder
	b.WriteString(header(source, "Kernel settings for a VPS, each with its reason."))
	for _, s := range settings {
		if s.Why != "" {
			b.WriteString("\n# " + s.Why + "\n")
		}
		fmt.Fprintf(&b, "%s = %s\n", s.Key, s.Value)
	}
	if !forwardingSet(settings) {
		b.WriteString("\n# IP forwarding is left as it is.\n")
	}
	return b.String()
}

func forwardingSet(s []Setting) bool {
	return slices.ContainsFunc(s, func(x Setting) bool { return x.Key == "net.ipv4.ip_forward" })
}

// forwardingUsers are packages that route traffic through this host.
var forwardingUsers = []string{"docker-ce", "docker.io", "moby-engine", "containerd", "podman", "lxd", "incus", "libvirt-daemon", "tailscale", "wireguard-tools", "k3s"}

func sysctlFacts(f *facts, in Input, swappiness *int) SysctlFacts {
	sf := SysctlFacts{
		Managed: !in.Host.Sysctl.Disabled, Swappiness: swappiness, Extra: in.Host.Sysctl.Extra,
		VPNOnly: exposure(in.SSH.Exposure) == "vpn",
	}
	var why []string
	if f.docker {
		why = append(why, "Docker")
	}
	for _, v := range f.vpnIfs {
		switch v.Kind {
		case "wireguard":
			why = append(why, "WireGuard ("+v.Name+")")
		case "tailscale":
			why = append(why, "Tailscale ("+v.Name+")")
			sf.Tailscale = true
		}
	}
	for _, name := range in.VPN.Interfaces {
		if strings.HasPrefix(name, "tailscale") {
			sf.Tailscale = true
		}
	}
	for _, r := range in.VPN.Ranges {
		if r.Prefix.Overlaps(vpn.TailscaleV4) || r.Prefix.Overlaps(vpn.TailscaleV6) {
			if _, ok := f.packages["tailscale"]; ok {
				sf.Tailscale = true
			}
		}
	}
	for _, p := range forwardingUsers {
		if pkg, ok := f.packages[p]; ok && pkg.Installed {
			why = append(why, p)
		}
	}
	slices.Sort(why)
	why = slices.Compact(why)
	sf.Forwarding = len(why) > 0
	sf.ForwardingWhy = strings.Join(why, ", ")
	if k := in.Host.Sysctl.KeepForwarding; k != nil {
		sf.Forwarding = *k
		sf.ForwardingWhy = "host.sysctl.keep_forwarding"
	}
	if f.wan != "" && slaac(f.root, f.wan) {
		sf.SLAACWAN = f.wan
	}
	return sf
}

// slaac reports whether iface holds a global IPv6 address that is not
// permanent: one configured from router advertisements
// (/proc/net/if_inet6: address, index, prefix length, scope, flags, name).
func slaac(root, iface string) bool {
	b, err := os.ReadFile(change.HostPath(root, "/proc/net/if_inet6"))
	if err != nil {
		return false
	}
	const permanent = 0x80
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 || f[5] != iface || f[3] != "00" {
			continue
		}
		flags, err := strconv.ParseUint(f[4], 16, 32)
		if err == nil && flags&permanent == 0 {
			return true
		}
	}
	return false
}

func planSysctl(f *facts, in Input, swappiness *int) *change.Step {
	sf := sysctlFacts(f, in, swappiness)
	settings := SysctlSettings(sf)
	if len(settings) == 0 {
		return nil
	}
	st := &change.Step{Layer: "sysctl"}
	data := []byte(RenderSysctl(in.Source, settings))
	old := map[string]string{}
	var live []Setting
	for _, s := range settings {
		cur, err := f.h.Sysctl(s.Key)
		if err != nil {
			continue // not on this kernel (or not in the fixture): file only
		}
		cur = strings.Join(strings.Fields(cur), " ")
		if cur != s.Value {
			old[s.Key] = cur
			live = append(live, s)
			st.Summary = append(st.Summary, fmt.Sprintf("%s: %s → %s", s.Key, cur, s.Value))
		}
	}
	if sf.Forwarding && sf.Managed && in.Host.Sysctl.KeepForwarding == nil {
		st.Summary = append(st.Summary, "IP forwarding left on for "+sf.ForwardingWhy)
	}
	if sf.SLAACWAN != "" && sf.Managed {
		st.Summary = append(st.Summary, "router advertisements kept on "+sf.SLAACWAN+" (its IPv6 address comes from SLAAC)")
	}
	cur, _ := change.ReadCurrent(f.root, SysctlFile)
	if bytes.Equal(cur, data) && len(live) == 0 {
		st.Summary = append(st.Summary, "kernel settings are as moat wants them: nothing to do")
		return st
	}
	if !bytes.Equal(cur, data) {
		st.Final = append(st.Final, change.File{Path: SysctlFile, Data: data, Mode: 0o644})
		st.Summary = append(st.Summary, "on confirm: write "+SysctlFile+" (live values until then, so a reboot inside the window comes back without them)")
	}
	if len(live) == 0 {
		return st
	}
	st.Undo = append(st.Undo, change.NewAction(ActionSysctlRestore, sysctlData{Values: old}))
	root := f.root
	st.Apply = func(ctx context.Context, w *change.Writer) error {
		for _, s := range live {
			if err := writeSysctl(root, s.Key, s.Value); err != nil {
				if readOnly(err) {
					return nil // a container's /proc/sys: not applicable
				}
				return err
			}
		}
		return nil
	}
	return st
}

type sysctlData struct {
	Values map[string]string `json:"values"`
}

// sysctlPath maps a sysctl name to its /proc/sys path, as sysctl(8) does.
func sysctlPath(key string) string {
	if i := strings.IndexAny(key, "./"); i >= 0 && key[i] == '/' {
		return "/proc/sys/" + key
	}
	// Dots separate levels; a slash stands for a dot inside one.
	return "/proc/sys/" + strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, key)
}

func writeSysctl(root, key, value string) error {
	p := change.HostPath(root, sysctlPath(key))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func readOnly(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EPERM)
}

// sysctlRestore writes back the values recorded before the change.
func sysctlRestore(ctx context.Context, env change.Env, data json.RawMessage) error {
	var d sysctlData
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	var errs []error
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range d.Values {
			if !yield(k) {
				return
			}
		}
	}) {
		if err := writeSysctl(env.Root, k, d.Values[k]); err != nil && !readOnly(err) && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
