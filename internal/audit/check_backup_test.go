package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

var backupNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// file is one file of a fixture tree: content, mode and mtime (zero: now).
type file struct {
	body  string
	mode  os.FileMode
	mtime time.Time
}

func writeTree(t *testing.T, files map[string]file) string {
	t.Helper()
	root := t.TempDir()
	for p, f := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(full, []byte(f.body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if !f.mtime.IsZero() {
			if err := os.Chtimes(full, f.mtime, f.mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func disks(t *testing.T, ds ...host.Disk) file {
	t.Helper()
	b, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	return file{body: string(b)}
}

func runBackups(t *testing.T, root string) []Result {
	t.Helper()
	o := Options{Root: root, NoProbe: true, SkipApt: true, Now: func() time.Time { return backupNow }}
	f := newFacts(context.Background(), &o, host.New(root))
	var out out
	checkBackups(f, &out)
	return out.results
}

// wantBackup asserts one result with this ID, subject and status, whose
// evidence contains ev.
func wantBackup(t *testing.T, rs []Result, id, subject string, st Status, ev string) {
	t.Helper()
	for _, r := range rs {
		if r.ID == id && (subject == "*" || r.Subject == subject) && r.Status == st && (ev == "" || strings.Contains(strings.Join(r.Evidence, "\n"), ev)) {
			return
		}
	}
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("  " + r.String() + "\n")
	}
	t.Errorf("no %s %s %s with %q in:\n%s", id, subject, st, ev, b.String())
}

func TestBackupNone(t *testing.T) {
	root := writeTree(t, map[string]file{
		// Debian's rsnapshot package: a config with no backup lines and
		// a cron file whose lines are all commented out.
		"etc/rsnapshot.conf":   {body: "config_version\t1.2\nsnapshot_root\t/var/cache/rsnapshot/\nretain\talpha\t6\n"},
		"etc/cron.d/rsnapshot": {body: "# 0 */4 * * * root /usr/bin/rsnapshot alpha\n"},
		"var/lib/dpkg/status":  {body: "Package: qemu-guest-agent\nStatus: install ok installed\nVersion: 1:7.2\n\n"},
	})
	rs := runBackups(t, root)
	wantBackup(t, rs, "BKP-001", "", Fail, "none of restic")
	wantBackup(t, rs, "BKP-001", "", Fail, "qemu-guest-agent")
	wantBackup(t, rs, "BKP-002", "", NA, "no backup tool")
	wantBackup(t, rs, "BKP-004", "", NA, "no backup tool")
}

func TestBackupResticRecent(t *testing.T) {
	root := writeTree(t, map[string]file{
		"etc/systemd/system/restic-backup.service":                   {body: "[Service]\nType=oneshot\nEnvironmentFile=/etc/restic/env\nExecStart=/usr/bin/restic backup --one-file-system /srv/data /etc\n"},
		"etc/systemd/system/restic-backup.timer":                     {body: "[Timer]\nOnCalendar=daily\n"},
		"etc/systemd/system/timers.target.wants/restic-backup.timer": {body: ""},
		"etc/restic/env":      {body: "RESTIC_REPOSITORY=sftp:backup@10.0.0.5:/srv/restic\nRESTIC_PASSWORD_FILE=/etc/restic/password\nB2_ACCOUNT_KEY=K000abc\n", mode: 0o600},
		"etc/restic/password": {body: "correct horse\n", mode: 0o600},
		"var/log/restic/backup.log": {body: "2026-12-04T03:00:01+00:00 using parent snapshot 0a0b0c0d\n2026-12-04T03:00:04+00:00 snapshot 0a0b0c0e saved\n" +
			"2026-12-05T03:00:01+00:00 start\n2026-12-05T03:00:05+00:00 snapshot 1a2b3c4d saved\n"},
	})
	rs := runBackups(t, root)
	wantBackup(t, rs, "BKP-001", "restic", Pass, "systemd: restic-backup.timer")
	wantBackup(t, rs, "BKP-002", "restic", Pass, "2026-12-05T03:00:05Z")
	wantBackup(t, rs, "BKP-003", "sftp:backup@10.0.0.5:/srv/restic", Pass, "remote")
	wantBackup(t, rs, "BKP-004", "/etc/restic/env", Pass, "0600")
	wantBackup(t, rs, "BKP-004", "/etc/restic/password", Pass, "0600")
}

func TestBackupResticStaleSameDiskReadable(t *testing.T) {
	old := backupNow.Add(-10 * 24 * time.Hour)
	root := writeTree(t, map[string]file{
		"etc/cron.d/restic":                   {body: "SHELL=/bin/sh\n0 3 * * * root RESTIC_PASSWORD_FILE=/root/.restic-pw /usr/bin/restic -r /var/backups/restic backup /home /etc\n"},
		"root/.restic-pw":                     {body: "hunter2\n", mode: 0o644},
		"var/backups/restic/snapshots/6f1e0c": {mtime: old},
		"var/backups/restic/config":           {},
		".fixture/df.json": disks(t, host.Disk{Device: "/dev/vda1", Mountpoint: "/", FSType: "ext4"},
			host.Disk{Device: "/dev/vda15", Mountpoint: "/boot/efi", FSType: "vfat"}),
	})
	rs := runBackups(t, root)
	wantBackup(t, rs, "BKP-001", "restic", Pass, "cron: /etc/cron.d/restic")
	wantBackup(t, rs, "BKP-002", "restic", Fail, "240h0m0s ago")
	wantBackup(t, rs, "BKP-003", "/var/backups/restic", Fail, "same disk as /home, /etc")
	wantBackup(t, rs, "BKP-004", "/root/.restic-pw", Fail, "mode 0644")
	for _, r := range rs {
		if r.ID == "BKP-004" && r.Status == Fail && !strings.Contains(r.Fix, "chmod 600 /root/.restic-pw") {
			t.Errorf("fix should name the file: %s", r.Fix)
		}
	}
}

func TestBackupDiskSeparation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		backup string // the device mounted at /mnt/backup
		want   Status
	}{
		{"other disk", "/dev/vdb1", Pass},
		{"other partition of the same disk", "/dev/vda2", Fail},
		{"nvme partitions of one disk", "/dev/nvme0n1p3", Pass}, // / is on vda here
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, map[string]file{
				"etc/cron.d/restic":              {body: "0 3 * * * root restic --repo /mnt/backup/restic backup /srv\n"},
				"mnt/backup/restic/snapshots/aa": {mtime: backupNow.Add(-time.Hour)},
				".fixture/df.json": disks(t, host.Disk{Device: "/dev/vda1", Mountpoint: "/", FSType: "ext4"},
					host.Disk{Device: tc.backup, Mountpoint: "/mnt/backup", FSType: "ext4"}),
			})
			rs := runBackups(t, root)
			wantBackup(t, rs, "BKP-003", "/mnt/backup/restic", tc.want, tc.backup)
			wantBackup(t, rs, "BKP-002", "restic", Pass, "/mnt/backup/restic/snapshots")
		})
	}
}

func TestBackupBorgmatic(t *testing.T) {
	root := writeTree(t, map[string]file{
		"etc/borgmatic/config.yaml":                              {body: "source_directories:\n  - /home\n  - /etc\nrepositories:\n  - path: ssh://borg@backup.example.net/./host\n    label: offsite\nencryption_passphrase: \"s3cret\"\nkeep_daily: 7\n"},
		"etc/systemd/system/timers.target.wants/borgmatic.timer": {},
		"root/.config/borg/security/5d3a/manifest-timestamp":     {body: "2026-12-06T02:00:03.123456"},
		"root/.config/borg/keys/backup_example_net__host":        {body: "BORG_KEY ...", mode: 0o600},
	})
	rs := runBackups(t, root)
	wantBackup(t, rs, "BKP-001", "borg", Pass, "systemd: borgmatic.timer")
	wantBackup(t, rs, "BKP-002", "borg", Pass, "manifest-timestamp")
	wantBackup(t, rs, "BKP-003", "ssh://borg@backup.example.net/./host", Pass, "remote")
	wantBackup(t, rs, "BKP-004", "/etc/borgmatic/config.yaml", Fail, "mode 0644")
	wantBackup(t, rs, "BKP-004", "/root/.config/borg/keys/backup_example_net__host", Pass, "")
}

func TestBackupOldBorgmaticFormatUnscheduled(t *testing.T) {
	root := writeTree(t, map[string]file{
		"etc/borgmatic/config.yaml": {body: "location:\n  source_directories: [/home]\n  repositories: [/mnt/usb/borg]\nstorage:\n  encryption_passcommand: cat /root/.borg-pw\n"},
	})
	rs := runBackups(t, root)
	wantBackup(t, rs, "BKP-001", "borg", Fail, "nothing runs it")
	wantBackup(t, rs, "BKP-002", "", NA, "borg: no log")
	wantBackup(t, rs, "BKP-004", "", NA, "no credential file")
}

func TestBackupRsnapshotLog(t *testing.T) {
	root := writeTree(t, map[string]file{
		"etc/rsnapshot.conf":    {body: "config_version\t1.2\nsnapshot_root\t/backup/snapshots/\nlogfile\t/var/log/rsnapshot.log\nretain\tdaily\t7\nbackup\t/home/\tlocalhost/\n"},
		"etc/cron.d/rsnapshot":  {body: "30 3 * * * root /usr/bin/rsnapshot daily\n"},
		"var/log/rsnapshot.log": {body: "[2026-11-20T03:30:01] /usr/bin/rsnapshot daily: started\n[2026-11-20T03:31:40] /usr/bin/rsnapshot daily: completed successfully\n[2026-11-21T03:30:01] /usr/bin/rsnapshot daily: ERROR: /usr/bin/rsync returned 12\n"},
		".fixture/df.json":      disks(t, host.Disk{Device: "/dev/sda1", Mountpoint: "/"}, host.Disk{Device: "/dev/sdb1", Mountpoint: "/backup"}),
	})
	rs := runBackups(t, root)
	wantBackup(t, rs, "BKP-001", "rsnapshot", Pass, "cron")
	wantBackup(t, rs, "BKP-002", "rsnapshot", Fail, "2026-11-20T03:31:40")
	wantBackup(t, rs, "BKP-003", "/backup/snapshots/", Pass, "/dev/sdb1")
}

func TestBackupDuplicityAndTimeshift(t *testing.T) {
	root := writeTree(t, map[string]file{
		"etc/cron.daily/duplicity": {body: "#!/bin/sh\nexport PASSPHRASE=abc\nduplicity --full-if-older-than 1M /srv sftp://u@backup.example.net//srv/dup\n", mode: 0o755},
		"root/.cache/duplicity/3f9e/duplicity-inc.20261204T030001Z.to.20261205T030001Z.manifest": {},
		"root/.cache/duplicity/3f9e/duplicity-full.20261101T030001Z.manifest":                    {},
		"etc/timeshift/timeshift.json":                      {body: `{"backup_device_uuid":"0b3c-11","schedule_daily":"true","schedule_boot":"false"}`},
		"timeshift/snapshots/2026-12-01_04-00-01/info.json": {},
	})
	rs := runBackups(t, root)
	wantBackup(t, rs, "BKP-002", "duplicity", Pass, "2026-12-05T03:00:01Z")
	wantBackup(t, rs, "BKP-003", "sftp://u@backup.example.net//srv/dup", Pass, "")
	wantBackup(t, rs, "BKP-001", "timeshift", Pass, "timeshift: daily")
	wantBackup(t, rs, "BKP-002", "timeshift", Fail, "2026-12-01")
	wantBackup(t, rs, "BKP-003", "", NA, "UUID=0b3c-11")
}

// A password written into a repository URL never reaches the report.
func TestBackupRepoPasswordRedacted(t *testing.T) {
	root := writeTree(t, map[string]file{
		"etc/cron.d/restic": {body: "0 3 * * * root restic -r rest:https://alice:s3cr3tpw@backup.example.net:8000/alice backup /home\n"},
	})
	for _, r := range runBackups(t, root) {
		if strings.Contains(r.String(), "s3cr3tpw") {
			t.Errorf("password in report: %s", r)
		}
	}
}
