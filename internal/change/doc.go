// Package change applies host changes as one transaction that undoes
// itself unless the operator proves, from a new SSH session, that they can
// still get in.
//
// A transaction is a list of Steps, one per host layer (sshd, the admin
// user, updates, swap, sysctls, the firewall). Apply:
//
//  1. snapshots every path any step declares — byte for byte, with mode,
//     owner and mtime, or a "did not exist" marker — under
//     /var/lib/moat/changes/ID/;
//  2. arms a rollback timer before anything changes, in a process outside
//     the caller's SSH session: a transient systemd timer (systemd-run)
//     where systemd is PID 1, otherwise a detached `moat change watchdog
//     ID` (its own session and process group, stdio on /dev/null, SIGHUP
//     ignored);
//  3. runs the steps, recording each step's undo actions before it runs,
//     under a deadline armed before the first one (the planned layers'
//     budgets plus the window) that moves to (steps done + window); a
//     moat apply that dies before the change waits is rolled back at once;
//  4. self-probes sshd through fresh connections, stamps the moment a
//     confirming connection must postdate, then waits.
//
// Confirm counts only from an SSH connection sshd accepted after that
// stamp, from outside the host, on the new port after a move (CheckProof;
// docs/design.md, "The confirmation rule"). It writes the steps' Final files (the
// boot-time configuration: the persisted nftables table, fstab, the sysctl
// file) and runs their Confirm actions, then disarms the timer. Rollback —
// on a failed step or probe, when the window passes, or on request —
// reverts moat's own edits of every snapshotted path against the path as
// it is now, keeping what others changed since (revert.go, accounts.go,
// merge.go; "Rollback merge" in docs/design.md), and runs the undo
// actions (reloading sshd, restoring the firewall table and sysctl
// values). Every path is reached without following a symlink a non-root
// user could have placed (safefs.go). A rollback with a failed path stays
// RollbackFailed and is retried.
//
// # Reboots inside the window
//
// Boot-time files are written only on confirm, so live-only changes (the
// nftables table, sysctl values, swapon) vanish with a reboot. Files that
// take effect on their own (the sshd drop-in, the admin user) are rolled
// back at boot on systemd hosts by moat-change-guard.service, which runs
// `moat rollback --boot` before ssh.service while a change is pending
// (InstallBootGuard). Elsewhere, the next moat command that finds a
// pending change past its deadline rolls it back (RecoverExpired).
//
// # On disk
//
//	/var/lib/moat/changes/pending          ID of the change waiting for confirm
//	/var/lib/moat/changes/last-rollback    the last rollback: ID, time, reason
//	/var/lib/moat/changes/ID/change.json   the manifest (Manifest)
//	/var/lib/moat/changes/ID/files/NNNN    snapshots
//	/var/lib/moat/changes/ID/final/NNNN    Final files, written on confirm
//	/var/lib/moat/changes/ID/after/NNNN    files as moat's step left them
//	/var/lib/moat/changes/ID/confirm/      files before and after confirm wrote them
//	/var/lib/moat/changes/ID/kept/PATH     versions before a change a rollback could not put back
//	/var/lib/moat/changes/ID/config/before moat.yaml before a quick edit (config.go)
//	/var/lib/moat/changes/ID/lock          flock held while the state moves
//
// A quick edit's moat.yaml is part of the change too (ConfigEdit): written
// once the timer is armed, put back by every rollback only if it still
// holds exactly the edit, else kept with the version before written
// beside it as moat.yaml.rolled-back-ID.
//
// Every path but moat.yaml takes the Store's root prefix, so tests run whole
// transactions against fixture trees.
package change
