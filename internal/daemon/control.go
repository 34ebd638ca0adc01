package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/schema"
)

// The control protocol's commands and arguments are control's; these
// names remain for code written against the daemon's.
const (
	CmdBans   = control.CmdBans
	CmdBan    = control.CmdBan
	CmdUnban  = control.CmdUnban
	CmdJails  = control.CmdJails
	CmdStatus = control.CmdStatus
	CmdReload = control.CmdReload
)

type (
	// BanArgs is control.BanArgs.
	BanArgs = control.BanArgs
	// UnbanArgs is control.UnbanArgs.
	UnbanArgs = control.UnbanArgs
)

// ParseTarget is control.ParseTarget.
func ParseTarget(s string) (netip.Prefix, error) { return control.ParseTarget(s) }

func (d *Daemon) handlers(s *control.Server) {
	s.Handle(control.CmdFleetStatus, func(ctx context.Context, _ json.RawMessage) (any, error) { return d.fleetStatus(ctx) })
	s.Handle(CmdBans, func(ctx context.Context, _ json.RawMessage) (any, error) {
		return d.store.Active(ctx)
	})
	s.Handle(CmdBan, func(ctx context.Context, raw json.RawMessage) (any, error) {
		var a BanArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		p, err := ParseTarget(a.Target)
		if err != nil {
			return nil, err
		}
		var dur time.Duration
		if a.For != "" {
			v, err := schema.ParseDuration(a.For)
			if err != nil {
				return nil, err
			}
			if v != schema.Permanent { // 0: until unbanned
				dur = v.D()
			}
		}
		reason := a.Reason
		if reason == "" {
			reason = "manual"
		}
		ch, err := d.enf.BanManual(ctx, p, dur, reason)
		if err != nil {
			return nil, err
		}
		return ch.Ban, nil
	})
	s.Handle(CmdUnban, func(ctx context.Context, raw json.RawMessage) (any, error) {
		var a UnbanArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		p, err := ParseTarget(a.Target)
		if err != nil {
			return nil, err
		}
		lifted, err := d.enf.Unban(ctx, p)
		if err != nil && !errors.Is(err, ban.ErrKernel) {
			return nil, err
		}
		if err != nil {
			// Lifted in the store, with a tombstone: the reconcile
			// retries the kernel. The CLI checks the sets itself.
			d.log.Warn("unban: the kernel sets were not updated", "prefix", p, "err", err)
		}
		if len(lifted) == 0 {
			return nil, fmt.Errorf("%s is not banned", p)
		}
		return lifted, nil
	})
	s.Handle(CmdJails, func(context.Context, json.RawMessage) (any, error) {
		return d.jailStatuses(), nil
	})
	s.Handle(CmdStatus, func(ctx context.Context, _ json.RawMessage) (any, error) {
		return d.status(ctx), nil
	})
	s.Handle(CmdReload, func(ctx context.Context, _ json.RawMessage) (any, error) {
		if err := d.reload(ctx); err != nil {
			return nil, fmt.Errorf("reload refused, the running config stays: %w", err)
		}
		return "reloaded", nil
	})
}

func (d *Daemon) jailStatuses() []jailStatus {
	d.mu.Lock()
	out := make([]jailStatus, 0, len(d.pipelines))
	for _, rp := range d.pipelines {
		out = append(out, rp.p.status())
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
