package vpn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// MTU is the tunnel's MTU: 1500 minus WireGuard's overhead over IPv6.
const MTU = 1420

// Device is a WireGuard interface moat brought up: the kernel's when its
// module loads, else wireguard-go's, run in this process with a TUN
// device and a UAPI socket under /var/run/wireguard, so wgctrl (and
// `wg show`) talk to both the same way.
type Device struct {
	Name      string
	Userspace bool
	dev       *device.Device
	uapi      net.Listener
}

// UpOptions say how to bring an interface up.
type UpOptions struct {
	// Userspace skips the kernel module and runs wireguard-go.
	Userspace bool
	Log       *slog.Logger
	// kernel creates a kernel WireGuard interface (tests model a kernel
	// with and without the module); nil is rtnetlink's RTM_NEWLINK.
	kernel func(name string) error
}

// Implementation names what runs an interface.
type Implementation string

const (
	Kernel    Implementation = "kernel"
	Userspace Implementation = "wireguard-go (userspace)"
)

// chooseImpl decides kernel or userspace WireGuard for name: the kernel's
// when it creates the interface, wireguard-go's when it cannot for want
// of the module (or userspace is asked for). A kernel that refuses for
// another reason (the name is taken, no permission) is an error: falling
// back would hide it, or fail the same way less clearly.
func chooseImpl(name string, userspace bool, kernel func(string) error) (Implementation, string, error) {
	if userspace {
		return Userspace, "asked for (--userspace)", nil
	}
	err := kernel(name)
	switch {
	case err == nil:
		return Kernel, "the kernel module created it", nil
	case errors.Is(err, unix.EEXIST):
		return "", "", fmt.Errorf("create %s: an interface of that name exists (another moat vpn up, or wg-quick?): %w", name, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return "", "", fmt.Errorf("create %s: %w (needs root)", name, err)
	}
	return Userspace, "no kernel WireGuard: " + err.Error(), nil
}

// addKernelLink creates a kernel WireGuard interface over rtnetlink.
func addKernelLink(name string) error {
	r, err := dialRTNL()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.addLink(name)
}

// Up creates the interface (kernel first, wireguard-go where the module
// is absent). It is not configured yet: see Configure and SetAddresses.
func Up(ctx context.Context, name string, opt UpOptions) (*Device, error) {
	if err := ValidInterface(name); err != nil {
		return nil, err
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.kernel == nil {
		opt.kernel = addKernelLink
	}
	impl, why, err := chooseImpl(name, opt.Userspace, opt.kernel)
	if err != nil {
		return nil, err
	}
	if impl == Kernel {
		return &Device{Name: name}, nil
	}
	opt.Log.Info("running wireguard-go in userspace", "iface", name, "reason", why)
	t, err := tun.CreateTUN(name, MTU)
	if err != nil {
		return nil, fmt.Errorf("create TUN device %s: %w (needs root and /dev/net/tun)", name, err)
	}
	logger := &device.Logger{
		Verbosef: func(string, ...any) {},
		Errorf:   func(f string, a ...any) { opt.Log.Warn("wireguard-go: "+fmt.Sprintf(f, a...), "iface", name) },
	}
	dev := device.NewDevice(t, conn.NewDefaultBind(), logger)
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("open the UAPI socket of %s: %w", name, err)
	}
	l, err := ipc.UAPIListen(name, f)
	if err != nil {
		f.Close()
		dev.Close()
		return nil, fmt.Errorf("listen on the UAPI socket of %s: %w", name, err)
	}
	d := &Device{Name: name, Userspace: true, dev: dev, uapi: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	return d, nil
}

// Done is closed when a userspace device stops on its own (its TUN went
// away); nil for a kernel device.
func (d *Device) Done() <-chan struct{} {
	if d.dev == nil {
		return nil
	}
	return d.dev.Wait()
}

// Close takes the interface down and removes it.
func (d *Device) Close() error {
	if d.Userspace {
		d.uapi.Close()
		d.dev.Close()
		return nil
	}
	index, err := linkIndex(d.Name)
	if err != nil {
		return err
	}
	r, err := dialRTNL()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.delLink(index)
}

// Impl says what runs the interface.
func (d *Device) Impl() Implementation {
	if d.Userspace {
		return Userspace
	}
	return Kernel
}

// Configure sets the interface's key, port and peers through wgctrl. With
// replace false, peers not named are left alone (their sessions and
// handshakes too).
func Configure(name string, key *wgtypes.Key, port int, peers []wgtypes.PeerConfig, replace bool) error {
	c, err := wgctrl.New()
	if err != nil {
		return fmt.Errorf("wgctrl: %w", err)
	}
	defer c.Close()
	cfg := wgtypes.Config{PrivateKey: key, ReplacePeers: replace, Peers: peers}
	if port > 0 {
		cfg.ListenPort = &port
	}
	if err := c.ConfigureDevice(name, cfg); err != nil {
		return fmt.Errorf("configure %s: %w", name, err)
	}
	return nil
}

// ErrNoDevice is returned when the interface is not up.
var ErrNoDevice = errors.New("WireGuard interface not up")

// Show reads the live interface; ErrNoDevice when it is not up.
func Show(name string) (*wgtypes.Device, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, fmt.Errorf("wgctrl: %w", err)
	}
	defer c.Close()
	d, err := c.Device(name)
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("%s: %w (start it: moat vpn up, or systemctl start moat-vpn)", name, ErrNoDevice)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return d, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// PeerConfig is the wgctrl form of a configured peer, with its preshared
// key from keys.
func (w *WireGuard) PeerConfig(p Peer, keys Keys) (wgtypes.PeerConfig, error) {
	pub, err := wgtypes.ParseKey(p.PublicKey)
	if err != nil {
		return wgtypes.PeerConfig{}, fmt.Errorf("peer %s: %w", p.Name, err)
	}
	pc := wgtypes.PeerConfig{PublicKey: pub, ReplaceAllowedIPs: true}
	psk, ok, err := keys.Preshared(p.PublicKey)
	if err != nil {
		return pc, fmt.Errorf("peer %s: %w", p.Name, err)
	}
	if !ok {
		psk = wgtypes.Key{} // all zeros: no preshared key
	}
	pc.PresharedKey = &psk
	ka := time.Duration(p.Keepalive) * time.Second
	pc.PersistentKeepaliveInterval = &ka
	for _, a := range p.Addresses {
		pc.AllowedIPs = append(pc.AllowedIPs, ipNet(a.Prefix))
	}
	return pc, nil
}

// Desired is every configured peer in wgctrl form.
func (w *WireGuard) Desired(keys Keys) ([]wgtypes.PeerConfig, error) {
	var out []wgtypes.PeerConfig
	for _, p := range w.Peers {
		pc, err := w.PeerConfig(p, keys)
		if err != nil {
			return nil, err
		}
		out = append(out, pc)
	}
	return out, nil
}

func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}
