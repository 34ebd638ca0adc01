package harden

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/moat-sh/moat/internal/change"
)

// Action kinds of the host layers' undo and confirm actions.
const (
	ActionSSHDReload    = "sshd-reload"
	ActionSysctlRestore = "sysctl-restore"
	ActionSwapoff       = "swapoff"
	ActionSwapFstab     = "swap-fstab"
)

// Handlers runs the host layers' actions, in whichever process rolls back
// or confirms. log hears what a reload did.
func Handlers(log *slog.Logger) change.Handlers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return change.Handlers{
		ActionSSHDReload: func(ctx context.Context, env change.Env, _ json.RawMessage) error {
			if env.Boot {
				return nil // sshd starts after the rollback, on the restored files
			}
			how, err := ReloadSSHD(ctx, env.Root)
			if err == nil {
				log.Info("sshd reloaded", "how", how)
			}
			return err
		},
		ActionSysctlRestore: sysctlRestore,
		ActionSwapoff:       swapoff,
		ActionSwapFstab:     swapFstab,
	}
}
