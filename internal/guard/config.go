package guard

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/jail"
)

// Jails returns the jails cfg runs: the configured ones over the built-in
// sshd jail (and the gateway jail when the gateway runs), minus disabled
// ones, each with its defaults filled in.
func Jails(cfg *config.Config) map[string]jail.Jail {
	out := map[string]jail.Jail{}
	if !cfg.Guard.IsEnabled() {
		return out
	}
	out["sshd"] = jail.Jail{}
	if cfg.Gateway != nil {
		out["gateway"] = jail.Jail{}
	}
	for name, j := range cfg.Guard.Jails {
		out[name] = j
	}
	for name, j := range out {
		if j.Enabled != nil && !*j.Enabled {
			delete(out, name)
			continue
		}
		out[name] = jail.JailDefaults(name, j)
	}
	return out
}

// Jail returns jail name as cfg runs it, with its defaults; false when cfg
// has no such jail (or it is disabled).
func Jail(cfg *config.Config, name string) (jail.Jail, bool) {
	j, ok := Jails(cfg)[name]
	return j, ok
}

// NewFilter builds jail j's filter. now dates syslog timestamps, which
// carry no year (nil: the clock).
func NewFilter(cfg *config.Config, j jail.Jail, now func() time.Time) (filter.Filter, error) {
	return cfg.Filter(j.Filter, j.Mode, filter.Options{Now: now})
}

// Options are the jail options cfg gives every jail on host h (nil: this
// machine): the IPv6 ban prefix, the ignore list, the table's bound. The
// daemon adds the ban store as History and Banned.
func Options(cfg *config.Config, h *host.Host) jail.Options {
	return jail.Options{
		IPv6Prefix: cfg.Firewall.Ban.IPv6Prefix,
		Ignore:     Ignore(cfg, h),
		MaxTracked: cfg.Guard.MaxTracked,
	}
}

// Ignore is every source never banned: guard.ignore, the VPN ranges, the
// admin sources, loopback, the addresses of h's own interfaces (nil: this
// machine) and the operator's SSH client.
func Ignore(cfg *config.Config, h *host.Host) []netip.Prefix {
	if h == nil {
		h = host.New("")
	}
	var out []netip.Prefix
	for _, c := range cfg.Guard.Ignore {
		out = append(out, c.Prefix)
	}
	out = append(out, cfg.VPN.Prefixes()...)
	for _, c := range cfg.Host.Admin.Sources {
		out = append(out, c.Prefix)
	}
	out = append(out, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	if ifs, err := h.Interfaces(); err == nil {
		for _, i := range ifs {
			for _, a := range i.Addrs {
				out = append(out, netip.PrefixFrom(a.Addr(), a.Addr().BitLen()))
			}
		}
	}
	for _, a := range operators(h) {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// operators are the addresses of the operator's SSH clients: this
// process's session (host.Operator, the one answer every layer asks), or,
// under systemd, which gives the daemon none, every session open now.
func operators(h *host.Host) []netip.Addr {
	ops := []host.Operator{h.Operator(os.Getpid(), os.Getenv)}
	if !ops[0].Conn.Valid() {
		ops, _ = h.SSHSessions()
	}
	var out []netip.Addr
	for _, o := range ops {
		if o.Conn.Valid() {
			out = append(out, o.Conn.Client.Addr().Unmap())
		}
	}
	return out
}

// Replay runs the log file at path through jail name of cfg as `moat run`
// would have, on host h (nil: this machine): the same line reading,
// filter, jail defaults and ignore list; bans are dated by the lines and
// kept by a replay engine instead of the store. Syslog timestamps are
// read relative to the file's last write. It returns the result and the
// number of lines read.
func Replay(cfg *config.Config, h *host.Host, name, path string) (jail.ReplayResult, int, error) {
	j, ok := Jail(cfg, name)
	if !ok {
		return jail.ReplayResult{}, 0, fmt.Errorf("no jail %q in %s: expected sshd, gateway or one under guard.jails (and enabled)", name, configName(cfg.File))
	}
	ref := time.Now()
	if st, err := os.Stat(path); err == nil {
		ref = st.ModTime()
	}
	flt, err := NewFilter(cfg, j, func() time.Time { return ref })
	if err != nil {
		return jail.ReplayResult{}, 0, fmt.Errorf("jail %s: %w", name, err)
	}
	eng, err := jail.NewReplayer(name, j, Options(cfg, h))
	if err != nil {
		return jail.ReplayResult{}, 0, err
	}
	u := &Unit{Name: name, Filter: flt, Engine: eng}
	n, err := ReadFile(path, u)
	if err != nil {
		return jail.ReplayResult{}, n, err
	}
	return eng.Result(), n, nil
}

func configName(file string) string {
	if file == "" {
		return "the config (none found: built-in defaults)"
	}
	return file
}
