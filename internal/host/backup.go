package host

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// Backup is one backup tool's set-up as read from the host's files: its
// configuration, what runs it, where it writes, which files hold its
// repository secrets and when it last succeeded. Nothing is executed: the
// tools' own commands may prompt, lock a repository or reach the network.
type Backup struct {
	Tool string `json:"tool"` // restic, borg, rsnapshot, duplicity, timeshift
	// Found are the files the set-up was read from (evidence).
	Found []string `json:"found"`
	// Schedule names what runs it: a cron file or a systemd timer; empty
	// when nothing does.
	Schedule []string `json:"schedule,omitempty"`
	// Repos are the repositories or targets as configured (a path, or a
	// URL such as sftp:host:/repo or ssh://…).
	Repos []string `json:"repos,omitempty"`
	// Sources are the paths it backs up, where the configuration says.
	Sources []string `json:"sources,omitempty"`
	// Secrets are files holding a repository password, passphrase, key or
	// cloud credential.
	Secrets []string `json:"secrets,omitempty"`
	// Last is the newest successful run found; zero when none could be
	// read. LastFrom says where it was read.
	Last     time.Time `json:"last,omitzero"`
	LastFrom string    `json:"last_from,omitempty"`
	// Unread says why Last could not be read, when it is zero.
	Unread string `json:"unread,omitempty"`
}

// BackupFacts is what Backups found.
type BackupFacts struct {
	Tools []Backup `json:"tools"`
	// Agents are hypervisor or cloud agents that make provider snapshots
	// possible; whether snapshots are taken cannot be seen from inside.
	Agents []string `json:"agents,omitempty"`
}

// backupTools are the command names that identify each tool on a command
// line (wrappers included).
var backupTools = map[string]string{
	"restic": "restic", "resticprofile": "restic", "autorestic": "restic",
	"borg": "borg", "borgmatic": "borg", "borgbackup": "borg",
	"rsnapshot": "rsnapshot",
	"duplicity": "duplicity", "duply": "duplicity",
	"timeshift": "timeshift",
}

// command is one command line that runs a backup tool, and where it is.
type command struct {
	tool, file string
	args       []string          // from the tool name on
	env        map[string]string // VAR=value before it, and EnvironmentFile=
	envFiles   []string
}

// Backups reads the backup tools' configuration, schedules and state.
// What cannot be read is left out (Backup.Unread says so for the last
// run): a backup set-up is spread over many optional files.
func (h *Host) Backups() BackupFacts {
	var bf BackupFacts
	cmds, scheduled := h.backupCommands()
	by := map[string]*Backup{}
	get := func(tool string) *Backup {
		if b := by[tool]; b != nil {
			return b
		}
		b := &Backup{Tool: tool}
		by[tool] = b
		return b
	}
	for _, c := range cmds {
		b := get(c.tool)
		b.Found = appendNew(b.Found, c.file)
		if scheduled[c.file] != "" {
			b.Schedule = appendNew(b.Schedule, scheduled[c.file])
		}
		h.readCommand(b, c)
	}
	h.readBorgmatic(get, by)
	h.readRsnapshot(get, by)
	h.readDuply(get)
	h.readTimeshift(get)

	for _, b := range by {
		switch b.Tool {
		case "restic":
			h.resticLast(b)
		case "borg":
			h.borgLast(b)
		case "duplicity":
			h.duplicityLast(b)
		}
		if b.Last.IsZero() && b.Unread == "" {
			b.Unread = "no log, cache or local repository of " + b.Tool + " was readable"
		}
		sort.Strings(b.Secrets)
		bf.Tools = append(bf.Tools, *b)
	}
	sort.Slice(bf.Tools, func(i, j int) bool { return bf.Tools[i].Tool < bf.Tools[j].Tool })
	bf.Agents = h.snapshotAgents()
	return bf
}

// backupCommands finds command lines running a backup tool in cron and in
// systemd units, and which of their files are scheduled (cron files
// always; a unit when an enabled timer of the same name starts it).
func (h *Host) backupCommands() ([]command, map[string]string) {
	var cmds []command
	scheduled := map[string]string{}
	var cronFiles []string
	cronFiles = append(cronFiles, "/etc/crontab")
	for _, dir := range []string{"/etc/cron.d", "/var/spool/cron/crontabs", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly"} {
		cronFiles = append(cronFiles, h.listDir(dir)...)
	}
	for _, f := range cronFiles {
		b, err := h.ReadFile(f)
		if err != nil {
			continue
		}
		n := len(cmds)
		for _, line := range strings.Split(string(b), "\n") {
			if c, ok := parseBackupCommand(line); ok {
				c.file = f
				cmds = append(cmds, c)
			}
		}
		if len(cmds) > n {
			scheduled[f] = "cron: " + f
		}
	}
	units := h.listDir("/etc/systemd/system")
	enabled := map[string]bool{}
	for _, d := range units {
		if strings.HasSuffix(d, ".wants") {
			for _, l := range h.listDir(d) {
				enabled[path.Base(l)] = true
			}
		}
	}
	for _, u := range units {
		if !strings.HasSuffix(u, ".service") {
			continue
		}
		b, err := h.ReadFile(u)
		if err != nil {
			continue
		}
		var envFiles []string
		env := map[string]string{}
		var found []command
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "EnvironmentFile":
				envFiles = append(envFiles, strings.TrimPrefix(strings.TrimSpace(v), "-"))
			case "Environment":
				for _, kv := range strings.Fields(v) {
					if ek, ev, ok := strings.Cut(strings.Trim(kv, `"`), "="); ok {
						env[ek] = ev
					}
				}
			case "ExecStart", "ExecStartPre", "ExecStartPost":
				if c, ok := parseBackupCommand(strings.TrimLeft(strings.TrimSpace(v), "-@:+!")); ok {
					c.file = u
					found = append(found, c)
				}
			}
		}
		for _, c := range found {
			for k, v := range env {
				if _, set := c.env[k]; !set {
					c.env[k] = v
				}
			}
			c.envFiles = append(c.envFiles, envFiles...)
			cmds = append(cmds, c)
		}
		timer := strings.TrimSuffix(path.Base(u), ".service") + ".timer"
		if len(found) > 0 && enabled[timer] {
			scheduled[u] = "systemd: " + timer
		}
	}
	return cmds, scheduled
}

// parseBackupCommand finds a backup tool on a cron or ExecStart line and
// splits what follows it. Words are split on blanks: shell quoting is not
// interpreted, so a path with spaces is read in pieces (evidence only).
func parseBackupCommand(line string) (command, bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return command{}, false
	}
	words := strings.Fields(line)
	env := map[string]string{}
	for i, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok && isEnvName(k) {
			env[k] = strings.Trim(v, `"'`)
			continue
		}
		if tool, ok := backupTools[path.Base(w)]; ok {
			return command{tool: tool, args: words[i:], env: env}, true
		}
	}
	return command{}, false
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// secretVars are environment variables whose value is a repository or
// cloud credential: a file that sets them holds a secret.
var secretVars = []string{
	"RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND", "BORG_PASSPHRASE", "BORG_PASSCOMMAND",
	"PASSPHRASE", "AWS_SECRET_ACCESS_KEY", "B2_ACCOUNT_KEY", "AZURE_ACCOUNT_KEY",
	"GOOGLE_APPLICATION_CREDENTIALS", "OS_PASSWORD", "RCLONE_CONFIG_PASS", "GPG_PW",
}

// readCommand takes the repository, sources and secret files from one
// command line and the environment files it loads.
func (h *Host) readCommand(b *Backup, c command) {
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	for _, f := range c.envFiles {
		vars, hasSecret := h.readEnvFile(f)
		for k, v := range vars {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
		if hasSecret {
			b.Secrets = appendNew(b.Secrets, f)
		}
	}
	// An inline secret in a cron line or unit makes that file a secret.
	for _, k := range secretVars {
		if _, ok := c.env[k]; ok {
			b.Secrets = appendNew(b.Secrets, c.file)
		}
	}
	args := c.args[1:]
	flag := func(i int, names ...string) (string, bool) {
		a := args[i]
		for _, n := range names {
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v, true
			}
			if a == n && i+1 < len(args) {
				return args[i+1], true
			}
		}
		return "", false
	}
	switch b.Tool {
	case "restic":
		if r := env["RESTIC_REPOSITORY"]; r != "" {
			b.Repos = appendNew(b.Repos, r)
		}
		if f := env["RESTIC_PASSWORD_FILE"]; f != "" {
			b.Secrets = appendNew(b.Secrets, f)
		}
		if f := env["RESTIC_REPOSITORY_FILE"]; f != "" {
			if rb, err := h.ReadFile(f); err == nil {
				b.Repos = appendNew(b.Repos, strings.TrimSpace(string(rb)))
			}
		}
		backup := false
		for i := range args {
			if v, ok := flag(i, "-r", "--repo"); ok {
				b.Repos = appendNew(b.Repos, v)
			}
			if v, ok := flag(i, "-p", "--password-file"); ok {
				b.Secrets = appendNew(b.Secrets, v)
			}
			if args[i] == "backup" {
				backup = true
			} else if backup && strings.HasPrefix(args[i], "/") && (i == 0 || !strings.HasPrefix(args[i-1], "-")) {
				b.Sources = appendNew(b.Sources, args[i])
			}
		}
	case "borg":
		if r := env["BORG_REPO"]; r != "" {
			b.Repos = appendNew(b.Repos, r)
		}
		if f := env["BORG_PASSPHRASE_FILE"]; f != "" { // not borg's own, but common in wrappers
			b.Secrets = appendNew(b.Secrets, f)
		}
		create := false
		for i, a := range args {
			switch {
			case a == "create":
				create = true
			case create && strings.Contains(a, "::"):
				repo, _, _ := strings.Cut(a, "::")
				if repo != "" {
					b.Repos = appendNew(b.Repos, repo)
				}
			case create && strings.HasPrefix(a, "/") && (i == 0 || !strings.HasPrefix(args[i-1], "-")):
				b.Sources = appendNew(b.Sources, a)
			}
		}
	case "duplicity":
		// duplicity [full|incremental] [options] SOURCE TARGET_URL
		var pos []string
		for i, a := range args {
			if strings.HasPrefix(a, "-") || (i > 0 && strings.HasPrefix(args[i-1], "--") && !strings.Contains(args[i-1], "=") && takesValue(args[i-1])) {
				continue
			}
			pos = append(pos, a)
		}
		for i, p := range pos {
			if strings.Contains(p, "://") {
				b.Repos = appendNew(b.Repos, p)
				if i > 0 && strings.HasPrefix(pos[i-1], "/") {
					b.Sources = appendNew(b.Sources, pos[i-1])
				}
			}
		}
	}
}

// takesValue reports whether a duplicity long option consumes the next
// word.
func takesValue(opt string) bool {
	switch opt {
	case "--encrypt-key", "--sign-key", "--archive-dir", "--name", "--exclude", "--include",
		"--exclude-filelist", "--include-filelist", "--full-if-older-than", "--volsize", "--log-file",
		"--ssh-options", "--tempdir", "--verbosity", "--gpg-options":
		return true
	}
	return false
}

// readEnvFile reads KEY=value lines, and reports whether one of them is a
// secret.
func (h *Host) readEnvFile(p string) (map[string]string, bool) {
	b, err := h.ReadFile(p)
	if err != nil {
		return nil, false
	}
	vars := map[string]string{}
	secret := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || !isEnvName(strings.TrimSpace(k)) {
			continue
		}
		k = strings.TrimSpace(k)
		vars[k] = strings.Trim(strings.TrimSpace(v), `"'`)
		if slices.Contains(secretVars, k) {
			secret = true
		}
	}
	return vars, secret
}

// readBorgmatic reads borgmatic's YAML configs (both the flat format of
// 1.8 and the older location:/storage: sections).
func (h *Host) readBorgmatic(get func(string) *Backup, by map[string]*Backup) {
	files := append([]string{"/etc/borgmatic/config.yaml"}, h.listDir("/etc/borgmatic.d")...)
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") && !strings.HasSuffix(f, ".yml") {
			continue
		}
		raw, err := h.ReadFile(f)
		if err != nil {
			continue
		}
		var doc map[string]any
		if yaml.Unmarshal(raw, &doc) != nil || doc == nil {
			continue
		}
		flat := map[string]any{}
		for k, v := range doc {
			if m, ok := v.(map[string]any); ok && (k == "location" || k == "storage") {
				for k2, v2 := range m {
					flat[k2] = v2
				}
				continue
			}
			flat[k] = v
		}
		b := get("borg")
		b.Found = appendNew(b.Found, f)
		if repos, ok := flat["repositories"].([]any); ok {
			for _, r := range repos {
				switch r := r.(type) {
				case string:
					b.Repos = appendNew(b.Repos, r)
				case map[string]any:
					if p, ok := r["path"].(string); ok {
						b.Repos = appendNew(b.Repos, p)
					}
				}
			}
		}
		if srcs, ok := flat["source_directories"].([]any); ok {
			for _, s := range srcs {
				if s, ok := s.(string); ok {
					b.Sources = appendNew(b.Sources, s)
				}
			}
		}
		if _, ok := flat["encryption_passphrase"]; ok {
			b.Secrets = appendNew(b.Secrets, f)
		}
		// Debian's borgmatic package ships borgmatic.timer; enabled, it
		// runs every config.
		if h.exists("/etc/systemd/system/timers.target.wants/borgmatic.timer") {
			b.Schedule = appendNew(b.Schedule, "systemd: borgmatic.timer")
		}
	}
	if b := by["borg"]; b != nil {
		for _, k := range h.listDir("/root/.config/borg/keys") {
			b.Secrets = appendNew(b.Secrets, k)
		}
	}
}

// rsnapshotLog matches rsnapshot's log line for a finished run:
// "[2026-12-05T03:00:01] /usr/bin/rsnapshot daily: completed successfully"
// (newer) or "[05/Dec/2026:03:00:01] …" (older).
var rsnapshotLog = regexp.MustCompile(`^\[([^\]]+)\] .*rsnapshot \S+: completed successfully`)

func (h *Host) readRsnapshot(get func(string) *Backup, by map[string]*Backup) {
	raw, err := h.ReadFile("/etc/rsnapshot.conf")
	if err != nil {
		return
	}
	// Debian installs /etc/rsnapshot.conf with the package; it is a
	// set-up only when something runs it or it backs something up.
	var root, logfile string
	var sources, intervals []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		var fields []string
		for _, x := range f {
			if x = strings.TrimSpace(x); x != "" {
				fields = append(fields, x)
			}
		}
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "snapshot_root":
			root = fields[1]
		case "logfile":
			logfile = fields[1]
		case "backup":
			sources = append(sources, fields[1])
		case "retain", "interval":
			intervals = append(intervals, fields[1])
		}
	}
	b := by["rsnapshot"]
	if b == nil && len(sources) == 0 {
		return
	}
	b = get("rsnapshot")
	b.Found = appendNew(b.Found, "/etc/rsnapshot.conf")
	if root != "" {
		b.Repos = appendNew(b.Repos, root)
	}
	for _, s := range sources {
		b.Sources = appendNew(b.Sources, s)
	}
	if logfile != "" {
		if lb, err := h.ReadFile(logfile); err == nil {
			for _, line := range strings.Split(string(lb), "\n") {
				m := rsnapshotLog.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				for _, layout := range []string{"2006-01-02T15:04:05", "02/Jan/2006:15:04:05", time.RFC3339} {
					if t, err := time.ParseInLocation(layout, m[1], time.Local); err == nil && t.After(b.Last) {
						b.Last, b.LastFrom = t, logfile
						break
					}
				}
			}
		}
	}
	if b.Last.IsZero() && root != "" && len(intervals) > 0 {
		// The newest snapshot of the smallest interval is "<interval>.0".
		if t, err := h.mtime(path.Join(root, intervals[0]+".0")); err == nil {
			b.Last, b.LastFrom = t, path.Join(root, intervals[0]+".0")
		}
	}
}

func (h *Host) readDuply(get func(string) *Backup) {
	for _, dir := range append(h.listDir("/etc/duply"), h.listDir("/root/.duply")...) {
		conf := path.Join(dir, "conf")
		vars, secret := h.readEnvFile(conf)
		if vars == nil {
			continue
		}
		b := get("duplicity")
		b.Found = appendNew(b.Found, conf)
		if t := vars["TARGET"]; t != "" {
			b.Repos = appendNew(b.Repos, t)
		}
		if s := vars["SOURCE"]; s != "" {
			b.Sources = appendNew(b.Sources, s)
		}
		if secret || vars["TARGET_PASS"] != "" {
			b.Secrets = appendNew(b.Secrets, conf)
		}
	}
}

// timeshiftSnap is the name timeshift gives a snapshot directory.
var timeshiftSnap = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$`)

func (h *Host) readTimeshift(get func(string) *Backup) {
	raw, err := h.ReadFile("/etc/timeshift/timeshift.json")
	if err != nil {
		return
	}
	var cfg map[string]any
	if json.Unmarshal(raw, &cfg) != nil {
		return
	}
	b := get("timeshift")
	b.Found = appendNew(b.Found, "/etc/timeshift/timeshift.json")
	if u, ok := cfg["backup_device_uuid"].(string); ok && u != "" {
		b.Repos = appendNew(b.Repos, "UUID="+u)
	}
	for _, k := range []string{"schedule_monthly", "schedule_weekly", "schedule_daily", "schedule_hourly", "schedule_boot"} {
		if v, _ := cfg[k].(string); v == "true" {
			b.Schedule = appendNew(b.Schedule, "timeshift: "+strings.TrimPrefix(k, "schedule_"))
		}
	}
	for _, dir := range []string{"/timeshift/snapshots", "/run/timeshift/backup/timeshift/snapshots"} {
		for _, s := range h.listDir(dir) {
			name := path.Base(s)
			if !timeshiftSnap.MatchString(name) {
				continue
			}
			if t, err := time.ParseInLocation("2006-01-02_15-04-05", name, time.Local); err == nil && t.After(b.Last) {
				b.Last, b.LastFrom = t, s
			}
		}
	}
	if b.Last.IsZero() {
		b.Unread = "no snapshot directory of timeshift is mounted (the backup device is found by UUID at run time)"
	}
}

// resticSaved matches restic backup's closing line.
var resticSaved = regexp.MustCompile(`snapshot [0-9a-f]{8,64} saved`)

// resticLast reads the newest snapshot time from a local repository's
// snapshots/ files, restic's cache of them, or a log of its output.
func (h *Host) resticLast(b *Backup) {
	var dirs []string
	for _, r := range b.Repos {
		if p, ok := localRepo(r); ok {
			dirs = append(dirs, path.Join(p, "snapshots"))
		}
	}
	for _, c := range append(h.listDir("/root/.cache/restic"), h.listDir("/var/cache/restic")...) {
		dirs = append(dirs, path.Join(c, "snapshots"))
	}
	for _, d := range dirs {
		for _, s := range h.listDir(d) {
			if t, err := h.mtime(s); err == nil && t.After(b.Last) {
				b.Last, b.LastFrom = t, d
			}
		}
	}
	logs := append(h.listDir("/var/log/restic"), h.glob("/var/log/restic*.log")...)
	for _, l := range logs {
		h.logLast(b, l, resticSaved)
	}
}

// borgLast reads the time of the newest archive from borg's security
// directory (manifest-timestamp, which borg rewrites on every create), or
// from a local repository's hints file.
func (h *Host) borgLast(b *Backup) {
	for _, d := range h.listDir("/root/.config/borg/security") {
		raw, err := h.ReadFile(path.Join(d, "manifest-timestamp"))
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(raw))
		for _, layout := range []string{"2006-01-02T15:04:05.999999", time.RFC3339Nano} {
			if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
				if t.After(b.Last) {
					b.Last, b.LastFrom = t, path.Join(d, "manifest-timestamp")
				}
				break
			}
		}
	}
	for _, r := range b.Repos {
		if p, ok := localRepo(r); ok {
			for _, f := range h.glob(path.Join(p, "hints.*")) {
				if t, err := h.mtime(f); err == nil && t.After(b.Last) {
					b.Last, b.LastFrom = t, f
				}
			}
		}
	}
}

// duplicityManifest matches the manifest names in duplicity's archive dir:
// duplicity-full.20261205T030001Z.manifest or
// duplicity-inc.20261204T030001Z.to.20261205T030001Z.manifest.
var duplicityManifest = regexp.MustCompile(`^duplicity-(?:full|inc\.\d{8}T\d{6}Z\.to)\.(\d{8}T\d{6}Z)\.manifest`)

func (h *Host) duplicityLast(b *Backup) {
	for _, d := range h.listDir("/root/.cache/duplicity") {
		for _, f := range h.listDir(d) {
			m := duplicityManifest.FindStringSubmatch(path.Base(f))
			if m == nil {
				continue
			}
			if t, err := time.Parse("20060102T150405Z", m[1]); err == nil && t.After(b.Last) {
				b.Last, b.LastFrom = t, d
			}
		}
	}
}

// logStamp finds a timestamp at the start of a log line.
var logStamp = regexp.MustCompile(`^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)`)

// logLast takes the newest line matching ok in the log p: its leading
// timestamp, or the file's mtime when the line has none and is the last
// such line (a wrapper that appends each run's output).
func (h *Host) logLast(b *Backup, p string, ok *regexp.Regexp) {
	raw, err := h.readTail(p, 1<<20)
	if err != nil {
		return
	}
	var last time.Time
	found := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var stamp time.Time
	for sc.Scan() {
		line := sc.Text()
		if m := logStamp.FindStringSubmatch(line); m != nil {
			if t, ok := parseLogTime(m[1]); ok {
				stamp = t
			}
		}
		if ok.MatchString(line) {
			found = true
			last = stamp
		}
	}
	if !found {
		return
	}
	if last.IsZero() {
		if t, err := h.mtime(p); err == nil {
			last = t
		}
	}
	if last.After(b.Last) {
		b.Last, b.LastFrom = last, p
	}
}

func parseLogTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04:05-0700", "2006-01-02 15:04:05-07:00"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// localRepo returns the path of a repository on a local filesystem.
func localRepo(r string) (string, bool) {
	r = strings.TrimPrefix(r, "local:")
	r = strings.TrimPrefix(r, "file://")
	if strings.HasPrefix(r, "/") {
		return r, true
	}
	return "", false
}

// snapshotAgents lists hypervisor and cloud agents through which a
// provider can take snapshots.
func (h *Host) snapshotAgents() []string {
	var out []string
	pk, _ := h.Packages()
	for name, what := range map[string]string{
		"qemu-guest-agent":   "qemu-guest-agent (Proxmox and other KVM hosts can take consistent snapshots)",
		"droplet-agent":      "droplet-agent (DigitalOcean)",
		"amazon-ssm-agent":   "amazon-ssm-agent (AWS)",
		"google-guest-agent": "google-guest-agent (Google Cloud)",
		"walinuxagent":       "walinuxagent (Azure)",
	} {
		if _, ok := pk[name]; ok {
			out = append(out, what)
		}
	}
	sort.Strings(out)
	return out
}

// listDir lists the entries of a host directory as host paths, sorted;
// nothing when it cannot be read.
func (h *Host) listDir(dir string) []string {
	ents, err := os.ReadDir(h.Path(dir))
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, path.Join(dir, e.Name()))
	}
	return out
}

func (h *Host) glob(pattern string) []string {
	m, _ := filepath.Glob(h.Path(pattern))
	out := make([]string, 0, len(m))
	for _, p := range m {
		if h.Live() {
			out = append(out, p)
			continue
		}
		rel, err := filepath.Rel(h.Root, p)
		if err == nil {
			out = append(out, "/"+filepath.ToSlash(rel))
		}
	}
	return out
}

func (h *Host) exists(p string) bool {
	_, err := os.Lstat(h.Path(p))
	return err == nil
}

// FileMode is the mode and owner of a host file.
type FileMode struct {
	Mode os.FileMode
	UID  uint32
}

// Mode stats a host file (following symbolic links, as the tool reading
// it would).
func (h *Host) Mode(p string) (FileMode, error) {
	fi, err := os.Stat(h.Path(p))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return FileMode{}, err
		}
		return FileMode{}, hint(err)
	}
	fm := FileMode{Mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fm.UID = st.Uid
	}
	return fm, nil
}

func appendNew(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
