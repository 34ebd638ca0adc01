package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

// backupMaxAge is how old the newest backup may be: a daily job that
// missed two runs.
const backupMaxAge = 48 * time.Hour

// backupFix names each tool's own commands for the fixes.
var backupFix = map[string]struct{ last, secret string }{
	"restic":    {"restic -r REPO snapshots --latest 1 shows the newest snapshot; journalctl -u THE-UNIT or the cron mail tells why runs fail", "chmod 600 FILE (restic reads RESTIC_PASSWORD_FILE and env files as root)"},
	"borg":      {"borgmatic list --last 1 (or borg list --last 1 REPO) shows the newest archive; systemctl status borgmatic.timer", "chmod 600 FILE; borgmatic reads its config and borg its keys as root"},
	"rsnapshot": {"rsnapshot -t daily shows what would run; check /etc/cron.d/rsnapshot (Debian ships it commented out) and rsnapshot's logfile", "chmod 600 FILE"},
	"duplicity": {"duplicity collection-status TARGET_URL shows the newest backup chain (duply PROFILE status)", "chmod 600 FILE (duply reads its conf as root)"},
	"timeshift": {"timeshift --list shows the snapshots; timeshift --create --comments manual takes one now", "chmod 600 FILE"},
}

func checkBackups(f *facts, o *out) {
	bf := f.h.Backups()
	if len(bf.Tools) == 0 {
		ev := []string{"none of restic, borg/borgmatic, rsnapshot, duplicity/duply or timeshift is configured (cron, systemd units, their config files)"}
		if len(bf.Agents) > 0 {
			ev = append(ev, "snapshot-capable agents: "+strings.Join(bf.Agents, ", ")+"; whether the provider takes snapshots cannot be seen from inside: check its console")
		}
		o.fail("BKP-001", "", ev...)
		for _, id := range []string{"BKP-002", "BKP-003", "BKP-004"} {
			o.na(id, "no backup tool is configured")
		}
		return
	}
	now := f.o.Now()
	for _, b := range bf.Tools {
		ev := []string{"configured in " + strings.Join(b.Found, ", ")}
		if len(b.Repos) > 0 {
			ev = append(ev, "repository: "+strings.Join(redactRepos(b.Repos), ", "))
		}
		if len(b.Schedule) == 0 {
			o.fail("BKP-001", b.Tool, append(ev, "nothing runs it: no cron entry and no enabled systemd timer starts "+b.Tool)...)
			o.setFix(fmt.Sprintf("schedule %s: a systemd timer (systemctl enable --now NAME.timer) or a line in /etc/cron.d/", b.Tool))
		} else {
			o.pass("BKP-001", b.Tool, append(ev, "run by "+strings.Join(b.Schedule, ", "))...)
		}

		switch age := now.Sub(b.Last); {
		case b.Last.IsZero():
			o.na("BKP-002", b.Tool+": "+b.Unread)
		case age > backupMaxAge:
			o.fail("BKP-002", b.Tool, fmt.Sprintf("newest successful run %s ago (%s), from %s", age.Round(time.Hour), b.Last.Format(time.RFC3339), b.LastFrom))
			o.setFix(backupFix[b.Tool].last)
		default:
			o.pass("BKP-002", b.Tool, fmt.Sprintf("newest successful run %s (from %s)", b.Last.Format(time.RFC3339), b.LastFrom))
		}

		checkBackupDisk(f, o, b)

		if len(b.Secrets) == 0 {
			o.na("BKP-004", b.Tool+": no credential file was found in its configuration")
		}
		for _, s := range b.Secrets {
			m, err := f.h.Mode(s)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				o.na("BKP-004", s+": named in the configuration but missing")
			case err != nil:
				f.denied(err, s)
				o.unknown("BKP-004", err)
			case m.Mode.Perm()&0o007 != 0:
				o.fail("BKP-004", s, fmt.Sprintf("%s is mode %04o: every local user can read the %s repository's credential, and with it read or delete the backups", s, m.Mode.Perm(), b.Tool))
				o.setFix(strings.ReplaceAll(backupFix[b.Tool].secret, "FILE", s))
			default:
				o.pass("BKP-004", s, fmt.Sprintf("%s is mode %04o", s, m.Mode.Perm()))
			}
		}
	}
}

// checkBackupDisk compares the disk a local repository is on with the disks
// of the data it protects: a backup on the same disk dies with it.
func checkBackupDisk(f *facts, o *out, b host.Backup) {
	if len(b.Repos) == 0 {
		o.na("BKP-003", b.Tool+": no repository is named in its configuration")
		return
	}
	disks, err := f.h.Disks()
	if err != nil {
		o.unknown("BKP-003", err)
		return
	}
	sources := b.Sources
	if len(sources) == 0 {
		sources = []string{"/"}
	}
	for _, r := range b.Repos {
		p, local := localRepoPath(r)
		if !local {
			if strings.HasPrefix(r, "UUID=") {
				o.na("BKP-003", b.Tool+": the backup device is named by "+r+"; lsblk -f shows whether it is a disk of its own")
				continue
			}
			o.pass("BKP-003", redactRepo(r), "remote repository: "+redactRepo(r))
			continue
		}
		rd, ok := diskOfPath(disks, p)
		if !ok {
			o.na("BKP-003", p+": the filesystems could not be read")
			continue
		}
		var same []string
		for _, s := range sources {
			if sd, ok := diskOfPath(disks, s); ok && physicalDisk(sd.Device) == physicalDisk(rd.Device) {
				same = append(same, s)
			}
		}
		if len(same) > 0 {
			o.fail("BKP-003", p, fmt.Sprintf("repository %s is on %s (mounted at %s), the same disk as %s", p, rd.Device, rd.Mountpoint, strings.Join(same, ", ")))
			o.setFix(fmt.Sprintf("keep a copy off this disk: a second repository on another host or object storage (restic copy, borg with an ssh:// repository, rclone), or move %s to a separate volume", p))
		} else {
			o.pass("BKP-003", p, fmt.Sprintf("repository %s is on %s, apart from %s", p, rd.Device, strings.Join(sources, ", ")))
		}
	}
}

func localRepoPath(r string) (string, bool) {
	r = strings.TrimPrefix(strings.TrimPrefix(r, "local:"), "file://")
	return r, strings.HasPrefix(r, "/")
}

// diskOfPath is the filesystem holding p: the longest mount point that
// prefixes it.
func diskOfPath(disks []host.Disk, p string) (host.Disk, bool) {
	var best host.Disk
	found := false
	for _, d := range disks {
		mp := strings.TrimSuffix(d.Mountpoint, "/")
		if (p == d.Mountpoint || mp == "" || p == mp || strings.HasPrefix(p, mp+"/")) && (!found || len(d.Mountpoint) > len(best.Mountpoint)) {
			best, found = d, true
		}
	}
	return best, found
}

var partitionSuffix = []*regexp.Regexp{
	regexp.MustCompile(`^(/dev/(?:nvme\d+n\d+|mmcblk\d+))p\d+$`),
	regexp.MustCompile(`^(/dev/(?:[shv]d[a-z]+|xvd[a-z]+))\d+$`),
}

// physicalDisk strips the partition from a device name, so two partitions
// of one disk count as one disk. LVM and other mapped devices are taken as
// they are: what lies beneath cannot be read from the mount table.
func physicalDisk(dev string) string {
	for _, re := range partitionSuffix {
		if m := re.FindStringSubmatch(dev); m != nil {
			return m[1]
		}
	}
	return dev
}

// repoCredential matches the user:password@ part of a URL.
var repoCredential = regexp.MustCompile(`://([^/@:]+):[^/@]+@`)

// redactRepo keeps a password written into a repository URL out of the
// report.
func redactRepo(r string) string { return repoCredential.ReplaceAllString(r, "://$1:***@") }

func redactRepos(rs []string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = redactRepo(r)
	}
	return out
}
