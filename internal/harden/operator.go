package harden

import (
	"context"
	"fmt"

	"github.com/moat-sh/moat/internal/sshd"
)

// operatorWarning says, before anything changes, when the identity the
// operator is logged in as would no longer be let in by sshd after the
// change (AllowUsers, AllowGroups, DenyUsers, PermitRootLogin), judged by
// sshd -T -C on the candidate configuration from the operator's own
// address. "" when the operator is unknown or stays allowed.
func (v *verifier) operatorWarning(ctx context.Context, ev evaluator, user string, port uint16) string {
	if user == "" {
		return ""
	}
	c := sshd.Context{User: user, Addr: publicSample.String(), LPort: int(port)}
	if v.f.hasSess {
		c.Addr = v.f.session.Client.Addr().String()
	}
	effs, err := ev.effective(ctx, []sshd.Context{c})
	if err != nil || len(effs) == 0 {
		return ""
	}
	e := effs[0]
	why := ""
	if user == "root" {
		if r := e.Get("permitrootlogin"); r == "no" || r == "forced-commands-only" {
			why = "PermitRootLogin " + r
		}
	}
	if why == "" {
		why = v.allowed(user, e)
	}
	if why == "" {
		return ""
	}
	alt := "a user that stays allowed"
	if v.admin.user != "" && v.admin.user != user {
		alt = v.admin.user
	}
	msg := fmt.Sprintf("you are logged in as %s, and after this change sshd would not let %s in (%s): before you confirm, check that a NEW login as %s works with a key you hold, or add %s to ssh.allow_users", user, user, why, alt, user)
	if key := v.f.opt.OperatorKey; key != "" && v.admin.user != "" && v.admin.user != user {
		held := false
		for _, line := range v.admin.keys {
			if keyID(line) == key {
				held = true
			}
		}
		if held {
			msg += fmt.Sprintf("; the key you logged in with (%s) is one of %s's", key, v.admin.user)
		} else {
			msg += fmt.Sprintf("; the key you logged in with (%s, from sshd's log) is NOT one of %s's keys, so unless you hold another you would have no way back in", key, v.admin.user)
		}
	}
	return msg
}
