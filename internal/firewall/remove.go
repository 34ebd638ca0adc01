package firewall

import (
	"context"
	"errors"
	"fmt"
)

// emptyTable stands for "no table inet moat" in the lockout check: the
// other tables (nftables.conf, Docker, ufw, …) then decide alone.
const emptyTable = "table inet moat {\n}\n"

// ErrNotLoaded says there is no table inet moat to remove.
var ErrNotLoaded = errors.New("table inet moat is not loaded")

// CheckRemoval answers, without changing anything, whether table inet
// moat may go: with it removed and the other tables as they are, at least
// one of paths must surely reach sshd (a host whose own nftables.conf
// drops everything else would otherwise lock the operator out the moment
// moat leaves). It returns every path's verdict; a *LockoutError refuses,
// and ErrNotLoaded says there is no table to remove.
func CheckRemoval(ctx context.Context, paths []Path) ([]PathResult, error) {
	live, err := readLive(ctx)
	if err != nil {
		return nil, err
	}
	if !live.exists {
		return nil, ErrNotLoaded
	}
	results, err := CheckLockout(ctx, emptyTable, paths)
	if err != nil {
		var lock *LockoutError
		if errors.As(err, &lock) {
			return results, fmt.Errorf("keeping table inet moat: without it no way into sshd stays open (the other tables drop it): %w", err)
		}
		return results, err
	}
	return results, nil
}

// Remove deletes table inet moat from the caller's network namespace
// after CheckRemoval, whose answer it returns.
func Remove(ctx context.Context, paths []Path) ([]PathResult, error) {
	results, err := CheckRemoval(ctx, paths)
	if err != nil {
		return results, err
	}
	return results, deleteTable(ctx)
}
