package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/logwatch"
)

// kernelSets adapts the firewall's netlink set API to the ban enforcer's
// Sets. The table may not be loaded yet when the daemon starts (the
// operator has not run `moat apply firewall`): the netlink handle is opened
// on first use and again after failures, so bans are enforced as soon as
// the table appears; meanwhile they are kept in the store.
type kernelSets struct {
	v6Prefix int
	log      *slog.Logger

	mu     sync.Mutex
	sets   *firewall.Sets
	cutter *firewall.Cutter // nil when conntrack cannot be opened
}

func (k *kernelSets) get() (*firewall.Sets, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sets != nil {
		return k.sets, nil
	}
	// The jail widens IPv6 sources to the ban prefix itself, and narrows
	// again where the prefix would cover an ignored address; the sets must
	// take its prefixes as they are (/128 here means "never widen").
	s, err := firewall.NewSets(128)
	if err != nil {
		return nil, fmt.Errorf("kernel ban sets: %w (hint: moat apply firewall --yes loads table inet moat)", err)
	}
	k.sets = s
	if k.cutter == nil {
		c, err := firewall.NewCutter(func(err error) { k.log.Warn("end banned sources' open connections", "err", err) })
		if err != nil {
			k.log.Warn("banned sources' open connections will run to their end", "err", err)
		} else {
			k.cutter = c
		}
	}
	return s, nil
}

func (k *kernelSets) reset() {
	k.mu.Lock()
	if k.sets != nil {
		k.sets.Close()
		k.sets = nil
	}
	k.mu.Unlock()
}

func (k *kernelSets) Add(ctx context.Context, elems []ban.SetElement) error {
	s, err := k.get()
	if err != nil {
		return err
	}
	fe := make([]firewall.Element, len(elems))
	for i, e := range elems {
		fe[i] = firewall.Element{Prefix: e.Prefix, Timeout: e.Timeout}
	}
	if err := s.Ban(ctx, fe); err != nil {
		k.reset()
		return err
	}
	// The table looks bans up for new connections only: end the
	// connections the banned sources already have, off the ban path.
	k.mu.Lock()
	c := k.cutter
	k.mu.Unlock()
	if c != nil {
		prefixes := make([]netip.Prefix, len(elems))
		for i, e := range elems {
			prefixes[i] = e.Prefix
		}
		c.Queue(prefixes)
	}
	return nil
}

func (k *kernelSets) Delete(ctx context.Context, prefixes []netip.Prefix) error {
	s, err := k.get()
	if err != nil {
		return err
	}
	if err := s.Unban(ctx, prefixes); err != nil {
		k.reset()
		return err
	}
	return nil
}

func (k *kernelSets) List(ctx context.Context) ([]ban.SetElement, error) {
	s, err := k.get()
	if err != nil {
		return nil, err
	}
	elems, err := s.Bans(ctx)
	if err != nil {
		k.reset()
		return nil, err
	}
	out := make([]ban.SetElement, len(elems))
	for i, e := range elems {
		out[i] = ban.SetElement{Prefix: e.Prefix, Timeout: e.Expires}
	}
	return out, nil
}

func (k *kernelSets) Close() {
	k.reset()
	k.mu.Lock()
	if k.cutter != nil {
		k.cutter.Close()
		k.cutter = nil
	}
	k.mu.Unlock()
}

// positions adapts the ban database's position table to logwatch.Store.
type positions struct{ p ban.Positions }

func (s positions) Load(source string) (logwatch.Position, bool, error) {
	b, ok, err := s.p.Load(source)
	if err != nil || !ok {
		return logwatch.Position{}, ok, err
	}
	var pos logwatch.Position
	if err := pos.UnmarshalText(b); err != nil {
		// A position we cannot read is a position we do not have: start
		// from the source's start policy rather than refuse to run.
		return logwatch.Position{}, false, nil
	}
	return pos, true, nil
}

func (s positions) Save(source string, pos logwatch.Position) error {
	b, err := pos.MarshalText()
	if err != nil {
		return err
	}
	return s.p.Save(source, b)
}
