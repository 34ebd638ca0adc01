package firewall

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotEnforced means table inet moat has no ban sets: bans are decided
// and stored, and nothing drops their sources.
var ErrNotEnforced = errors.New("NOT ENFORCED: table inet moat has no ban sets")

// EnsureBanSets makes sure the ban sets that `moat run` enforces into
// exist, in the caller's network namespace. With s.BansOnly it loads the
// bans-only table (Render of s) when they are missing and reports true;
// a table that has them is left as it is, whatever else it holds (`moat
// apply firewall` owns its changes). In full mode it creates nothing: the
// default-drop table is `moat apply firewall`'s, with its lockout checks,
// and a missing one is ErrNotEnforced.
func EnsureBanSets(ctx context.Context, s *Spec) (created bool, err error) {
	sets, err := NewSets(s.BanIPv6Prefix)
	if err != nil {
		return false, err
	}
	ok, err := sets.Present(KindBan)
	sets.Close()
	switch {
	case err != nil:
		return false, err
	case ok:
		return false, nil
	case !s.BansOnly:
		return false, fmt.Errorf("%w (run moat apply firewall, or set firewall.mode: bans-only to let moat run create just the ban sets and their drop rules)", ErrNotEnforced)
	}
	if err := s.Validate(); err != nil {
		return false, fmt.Errorf("bans-only table: %w", err)
	}
	if _, err := Replace(ctx, Render(s), s.BanIPv6Prefix); err != nil {
		return false, fmt.Errorf("create the bans-only table inet moat: %w", err)
	}
	return true, nil
}
