package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/guard"
)

// blocklists runs guard.blocklists: a blocklist.Manager feeding the
// firewall's block4/block6 sets. A reload that changes the lists starts
// a new manager (it loads the cached copies first, so the sets are
// replaced, never emptied).
type blocklists struct {
	mu     sync.Mutex
	m      *blocklist.Manager
	key    string
	cancel context.CancelFunc
	sink   *blockSink
}

// blockSink is the kernel's blocklist sets, opened on first use and
// again after a failure (the table may be loaded after moat run starts).
type blockSink struct {
	mu   sync.Mutex
	sets *firewall.Sets
}

func (k *blockSink) ReplaceBlocklist(ctx context.Context, ps []netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sets == nil {
		s, err := firewall.NewSets(128)
		if err != nil {
			return err
		}
		k.sets = s
	}
	err := k.sets.ReplaceBlocklist(ctx, ps)
	if err != nil {
		k.sets.Close()
		k.sets = nil
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("table inet moat has no blocklist sets: run moat apply firewall to create them (%w)", err)
		}
	}
	return err
}

func (k *blockSink) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sets != nil {
		k.sets.Close()
		k.sets = nil
	}
}

func blocklistKey(cfg *config.Config) string {
	if !cfg.Guard.IsEnabled() {
		return ""
	}
	b, _ := json.Marshal(cfg.Guard.Blocklists)
	return string(b)
}

// startBlocklists starts (or, after a reload that changed them,
// restarts) the blocklists of cfg; none configured stops them.
func (d *Daemon) startBlocklists(ctx context.Context, cfg *config.Config) {
	key := blocklistKey(cfg)
	b := &d.blocks
	b.mu.Lock()
	defer b.mu.Unlock()
	sink := d.o.blockSink
	if sink == nil {
		if b.sink == nil {
			b.sink = &blockSink{}
		}
		sink = b.sink
	}
	if b.m != nil && b.key == key {
		// The lists are the same; what is never blocked (admin
		// sources, VPN ranges, guard.ignore) may not be.
		m := b.m
		go func() {
			if err := m.Load(ctx); err != nil {
				d.log.Warn("blocklists not reloaded", "err", err)
			}
		}()
		return
	}
	wasRunning := b.m != nil
	if b.cancel != nil {
		b.cancel()
		b.m, b.cancel = nil, nil
	}
	b.key = key
	if key == "" || len(cfg.Guard.Blocklists) == 0 {
		if wasRunning {
			// The lists were removed: so are their networks.
			if err := sink.ReplaceBlocklist(ctx, nil); err != nil {
				d.log.Warn("blocklist sets not emptied after the lists were removed", "err", err)
			}
		}
		return
	}
	o := blocklist.Options{
		StateDir: d.o.StateDir, Sink: sink, Log: d.log.With("component", "blocklist"),
		Exempt: func() []blocklist.Exempt {
			d.mu.Lock()
			c := d.cfg
			d.mu.Unlock()
			return blocklistExempt(c, d)
		},
	}
	if d.fleet != nil {
		// In a fleet a URL list is fetched once and shared (fleetlists.go).
		o.Shared, o.Published = d.fleet.lists.shared, d.fleet.lists.published
	}
	m := blocklist.New(cfg.Guard.Blocklists, o)
	bctx, cancel := context.WithCancel(ctx)
	b.m, b.cancel = m, cancel
	d.goRun(bctx, "blocklists", m.Run)
}

// blocklistManager is the running manager, nil when none runs.
func (d *Daemon) blocklistManager() *blocklist.Manager {
	b := &d.blocks
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m
}

// blocklistStatus is the running manager's status, nil when none runs.
func (d *Daemon) blocklistStatus() *blocklist.Status {
	b := &d.blocks
	b.mu.Lock()
	m := b.m
	b.mu.Unlock()
	if m == nil {
		return nil
	}
	st := m.Status()
	return &st
}

// blocklistExempt is every network no list may block, each with its
// reason: guard.ignore, the VPN ranges, the admin sources, and the
// sources the guard never bans (loopback, the host's own addresses, the
// operator's SSH sessions); and the host's private connected networks
// (Docker bridges, a LAN), whose neighbours a list of bogons such as
// FireHOL level 1 would otherwise cut off.
func blocklistExempt(cfg *config.Config, d *Daemon) []blocklist.Exempt {
	var out []blocklist.Exempt
	for _, c := range cfg.Guard.Ignore {
		out = append(out, blocklist.Exempt{Prefix: c.Prefix, Why: "guard.ignore"})
	}
	for _, p := range cfg.VPN.Prefixes() {
		out = append(out, blocklist.Exempt{Prefix: p, Why: "vpn"})
	}
	for _, c := range cfg.Host.Admin.Sources {
		out = append(out, blocklist.Exempt{Prefix: c.Prefix, Why: "admin"})
	}
	seen := map[netip.Prefix]bool{}
	for _, e := range out {
		seen[e.Prefix.Masked()] = true
	}
	for _, p := range guard.Ignore(cfg, d.h) {
		if !seen[p.Masked()] {
			out = append(out, blocklist.Exempt{Prefix: p, Why: "host"})
		}
	}
	if ifs, err := d.h.Interfaces(); err == nil {
		for _, i := range ifs {
			for _, a := range i.Addrs {
				if a.Addr().IsPrivate() || a.Addr().IsLinkLocalUnicast() {
					out = append(out, blocklist.Exempt{Prefix: a.Masked(), Why: "connected network " + i.Name})
				}
			}
		}
	}
	return out
}

// blocklistMetrics reads the running manager's metrics at scrape time;
// unchecked (no fixed descriptions): a reload may replace the manager.
type blocklistMetrics struct{ d *Daemon }

func (blocklistMetrics) Describe(chan<- *prometheus.Desc) {}

func (c blocklistMetrics) Collect(ch chan<- prometheus.Metric) {
	b := &c.d.blocks
	b.mu.Lock()
	m := b.m
	b.mu.Unlock()
	if m != nil {
		m.Collect(ch)
	}
}

func (b *blocklists) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sink != nil {
		b.sink.close()
	}
}

// writeBlocklists is the BLOCKLISTS block of `moat status`.
func writeBlocklists(w io.Writer, st *blocklist.Status, now time.Time) {
	if st == nil {
		return
	}
	fmt.Fprintf(w, "\nBLOCKLISTS  %d range(s) dropped", st.Ranges)
	if !st.Loaded.IsZero() {
		fmt.Fprintf(w, ", loaded %s ago", ageText(now.Sub(st.Loaded)))
	}
	if st.LoadError != "" {
		fmt.Fprintf(w, "; NOT LOADED: %s", st.LoadError)
	}
	fmt.Fprintln(w)
	for _, l := range st.Lists {
		s := fmt.Sprintf("%d entries (%d IPv4, %d IPv6)", l.Entries, l.IPv4, l.IPv6)
		if !l.Loaded {
			s = "nothing loaded yet"
		}
		if !l.LastRefresh.IsZero() {
			s += ", checked " + ageText(now.Sub(l.LastRefresh)) + " ago"
		}
		if !l.LastChange.IsZero() {
			s += ", copy from " + ageText(now.Sub(l.LastChange)) + " ago"
		}
		if l.From != "" {
			s += ", from " + l.From
		}
		if l.FromCache {
			s += " (cached)"
		}
		if l.LastError != "" {
			s += "; LAST REFRESH FAILED: " + l.LastError
		}
		fmt.Fprintf(w, "  %-16s %s\n", l.Name, s)
		if l.LastRefusal != "" && l.LastRefusal != l.LastError {
			// Refused before, taken since: still worth knowing why.
			fmt.Fprintf(w, "  %-16s last update refused %s ago (%s): %s\n", "", ageText(now.Sub(l.LastRefusalAt)), l.LastRefusalReason, l.LastRefusal)
		} else if l.LastRefusal != "" {
			fmt.Fprintf(w, "  %-16s refusal reason: %s\n", "", l.LastRefusalReason)
		}
	}
	if st.CarvedTotal > 0 {
		c := st.Carved[0]
		fmt.Fprintf(w, "  %d entr(ies) overlap networks never blocked and are carved out, e.g. %s (%s) overlaps %s (%s)\n",
			st.CarvedTotal, c.Entry, c.List, c.Exempt, c.Why)
	}
}
