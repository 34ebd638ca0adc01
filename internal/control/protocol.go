package control

import (
	"fmt"
	"net/netip"

	"github.com/moat-sh/moat/internal/schema"
)

// The commands `moat run` serves on its control socket and the CLI sends.
// They live here, not in the daemon, so that a client needs only this
// package.
const (
	CmdBans   = "bans"
	CmdBan    = "ban"
	CmdUnban  = "unban"
	CmdJails  = "jails"
	CmdStatus = "status"
	CmdReload = "reload"
)

// BanArgs are `moat ban`'s.
type BanArgs struct {
	Target string `json:"target"` // address or CIDR
	For    string `json:"for"`    // duration; "" is until unbanned
	Reason string `json:"reason"`
}

// UnbanArgs are `moat unban`'s.
type UnbanArgs struct {
	Target string `json:"target"`
}

// ParseTarget reads an address or CIDR to ban, never a host name.
func ParseTarget(s string) (netip.Prefix, error) {
	c, err := schema.ParseCIDR(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%v (moat bans addresses and networks, never host names)", err)
	}
	return c.Prefix, nil
}
