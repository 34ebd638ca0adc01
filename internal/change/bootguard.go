package change

import (
	"context"
	"fmt"
	"os"
)

// The boot guard: a unit that, at boot, rolls back a change still waiting
// for confirm, before sshd and the network start. It is installed once
// and stays; without a pending change its condition keeps it from
// running.
const (
	GuardUnitPath  = "/etc/systemd/system/moat-change-guard.service"
	GuardWantsLink = "/etc/systemd/system/sysinit.target.wants/moat-change-guard.service"
	guardTarget    = "../moat-change-guard.service"
)

const guardUnit = `# Written by moat: rolls back a change that was not confirmed before a reboot.
# It runs only while %[1]s/pending exists (a change waits for confirm).
[Unit]
Description=moat: roll back an unconfirmed change
DefaultDependencies=no
ConditionPathExists=%[1]s/pending
After=local-fs.target
Before=ssh.service sshd.service network-pre.target moat-firewall.service systemd-sysctl.service shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target

[Service]
Type=oneshot
ExecStart=%[2]s rollback --boot

[Install]
WantedBy=sysinit.target
`

// GuardUnit returns the boot guard's unit text for the moat binary.
func GuardUnit(moat string) string { return fmt.Sprintf(guardUnit, StateDir, moat) }

// InstallBootGuard writes and enables the boot guard under root unless it
// is there already with the same text. It is not part of any change: it
// must stay through rollbacks to do its job at the next boot.
func InstallBootGuard(root, moat string) error {
	want := GuardUnit(moat)
	if cur, err := ReadCurrent(root, GuardUnitPath); err != nil || string(cur) != want {
		if err := WriteFile(root, File{Path: GuardUnitPath, Data: []byte(want), Mode: 0o644}); err != nil {
			return fmt.Errorf("install the boot guard: %w", err)
		}
	}
	link := HostPath(root, GuardWantsLink)
	if t, err := os.Readlink(link); err == nil && t == guardTarget {
		return nil
	}
	if err := symlinkAtomic(guardTarget, link, 0, 0); err != nil {
		return fmt.Errorf("enable the boot guard: %w", err)
	}
	return nil
}

// RollbackAtBoot rolls back the pending change, if any: the body of
// `moat rollback --boot`.
func (s *Store) RollbackAtBoot(ctx context.Context, opt RollbackOptions) (*Manifest, error) {
	id, err := s.Pending()
	if err != nil || id == "" {
		return nil, err
	}
	opt.Boot, opt.FromTimer = true, true
	return s.Rollback(ctx, id, "the host rebooted before the change was confirmed", opt)
}
