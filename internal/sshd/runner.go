package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultConfigFile is sshd's main configuration file.
const DefaultConfigFile = "/etc/ssh/sshd_config"

const (
	// maxParallel bounds concurrent sshd -T processes in EffectiveMany;
	// each is CPU-bound for a few milliseconds.
	maxParallel = 4
	// defaultRunTimeout bounds one sshd -T when ctx has no deadline.
	defaultRunTimeout = 10 * time.Second
	// maxTOutput bounds what is kept of sshd's stdout (real: ~6 KiB).
	maxTOutput = 4 << 20
	maxStderr  = 16 << 10
	// waitDelay bounds how long Wait waits for output after sshd exits
	// or is killed. Generous: on a loaded host the goroutine copying the
	// output can be starved for a second or more.
	waitDelay = 5 * time.Second
	// unprivUID is the overflow "nobody" ID sshd runs as for fixtures
	// when we are root (see Runner).
	unprivUID = 65534
)

// Runner runs sshd -T to learn the effective configuration.
//
// Live (Root "" or "/"): sshd reads its own files exactly as in
// production. If sshd reports its privilege separation directory missing
// (/run/sshd on Debian: systemd creates it only while ssh.service runs,
// and never on socket-activated Ubuntu) and we are root, that directory
// is created (0755, under /run only) and sshd run again.
//
// Fixture (Root set): the main config and everything its Includes match
// are copied to a temporary directory with Include paths pointing into
// the copy (see buildFixture), so sshd applies its own rules — first value
// wins, Include order, Match evaluation — to the fixture's files. What
// differs from running sshd on that host:
//   - sshd gets a throwaway Ed25519 host key with -h, since it refuses to
//     run without one. That key is removed from the reported hostkey list;
//     when the config names no HostKey, the list becomes sshd's compiled-in
//     defaults, which sshd would have reported without -h.
//   - when we are root, sshd runs as uid/gid 65534: unprivileged, sshd
//     skips the privilege separation directory check (so nothing on the
//     host needs creating) and cannot read the host's real keys.
//   - Match Group criteria are rewritten into the User lists the fixture's
//     /etc/passwd and /etc/group give (sshd itself would ask the running
//     host's NSS, which knows nothing of the fixture's accounts).
//
// Every run: when sshd refuses to evaluate because a Match criterion is
// not in the connection spec ("'Match LocalPort' in configuration but
// 'lport' not in connection test specification"), the field is filled
// with a value no such Match line names and the run repeated; when this
// sshd's -C does not know a field at all, the field is dropped. Either way
// the Effective's Notes say what could not be verified, and the caller
// still gets the configuration.
type Runner struct {
	// Binary is the sshd executable; "" finds "sshd" in PATH, then
	// /usr/sbin/sshd.
	Binary string
	// Root is a fixture tree prefix; "" or "/" is the live system.
	Root string
	// ConfigFile is the main config path as seen inside Root; "" is
	// DefaultConfigFile.
	ConfigFile string
	// Unprivileged evaluates the live config the way a fixture is
	// evaluated (a copy, a throwaway host key), for callers that are not
	// root and so cannot let sshd read the real host keys.
	Unprivileged bool
}

// RunError is a failed sshd run: the command, sshd's own complaint and
// what to do about it.
type RunError struct {
	Command string // e.g. "sshd -T -f /etc/ssh/sshd_config -C user=root"
	Stderr  string // sshd's stderr, trimmed, lines joined with "; "
	Hint    string
	Err     error
}

func (e *RunError) Error() string {
	var b strings.Builder
	b.WriteString(e.Command)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	if e.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

func (e *RunError) Unwrap() error { return e.Err }

// Effective runs sshd -T for one connection context.
func (r Runner) Effective(ctx context.Context, c Context) (Effective, error) {
	out, err := r.EffectiveMany(ctx, []Context{c})
	if err != nil {
		return Effective{}, err
	}
	return out[0], nil
}

// EffectiveMany runs sshd -T once per context, a few at a time, sharing
// one fixture copy. out[i] belongs to cs[i]; on error, out holds the runs
// that succeeded (zero Effective for the others) and the error joins
// every failure.
func (r Runner) EffectiveMany(ctx context.Context, cs []Context) ([]Effective, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	specs := make([]string, len(cs))
	for i, c := range cs {
		s, err := c.Spec()
		if err != nil {
			return nil, err
		}
		specs[i] = s
	}
	inv, err := r.prepare()
	if err != nil {
		return nil, err
	}
	defer inv.close()

	out := make([]Effective, len(cs))
	errs := make([]error, len(cs))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i := range specs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = inv.run(ctx, specs[i])
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (r Runner) live() bool {
	return (r.Root == "" || filepath.Clean(r.Root) == "/") && !r.Unprivileged
}

// invocation is everything a single sshd -T run needs.
type invocation struct {
	binary  string
	config  string       // -f argument
	shown   string       // config path as the user knows it, for errors
	root    string       // fixture root; "" when live
	fixture *fixtureTree // nil when live
	cred    *syscall.Credential
}

func (r Runner) prepare() (*invocation, error) {
	bin, err := findSSHD(r.Binary)
	if err != nil {
		return nil, err
	}
	cfg := r.ConfigFile
	if cfg == "" {
		cfg = DefaultConfigFile
	}
	inv := &invocation{binary: bin, config: cfg, shown: cfg}
	if r.live() {
		return inv, nil
	}
	uid := -1
	if os.Geteuid() == 0 {
		uid = unprivUID
		inv.cred = &syscall.Credential{Uid: unprivUID, Gid: unprivUID, Groups: []uint32{}}
	}
	root := r.Root
	if root == "" {
		root = "/" // Unprivileged: the live tree, copied like a fixture
	}
	var acc *Accounts
	if !r.live() && r.Root != "" && filepath.Clean(r.Root) != "/" {
		acc = loadAccounts(root)
	}
	t, err := buildFixture(root, cfg, uid, acc)
	if err != nil {
		return nil, err
	}
	inv.fixture = t
	inv.config = t.config
	inv.shown = filepath.Join(root, cfg)
	inv.root = filepath.Clean(root)
	return inv, nil
}

func (inv *invocation) close() {
	if inv.fixture != nil {
		inv.fixture.Close()
	}
}

func (inv *invocation) run(ctx context.Context, spec string) (Effective, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRunTimeout)
		defer cancel()
	}
	var notes []string
	for attempt := 0; ; attempt++ {
		stdout, stderr, err := inv.runOnce(ctx, spec)
		if err != nil && attempt < maxSpecRetries {
			if next, note, ok := inv.completeSpec(spec, stderr); ok {
				spec = next
				notes = append(notes, note)
				continue
			}
		}
		if err != nil {
			return Effective{}, inv.runError(spec, stderr, err)
		}
		e, err := ParseT(bytes.NewReader(stdout))
		if err == nil && e.Len() == 0 {
			err = errNoOutput
		}
		if err != nil {
			return Effective{}, inv.runError(spec, stderr, err)
		}
		if inv.fixture != nil {
			e.restoreHostKeys(inv.fixture.hostKey)
		}
		e.notes = notes
		return e, nil
	}
}

// maxSpecRetries bounds how often one run fills in a missing -C field.
const maxSpecRetries = 8

func (inv *invocation) runOnce(ctx context.Context, spec string) (stdout, stderr []byte, err error) {
	args := []string{"-T", "-f", inv.config}
	if inv.fixture != nil {
		args = append(args, "-h", inv.fixture.hostKey)
	}
	if spec != "" {
		args = append(args, "-C", spec)
	}
	stdout, stderr, err = inv.exec(ctx, args)
	if err != nil && inv.fixture == nil && os.Geteuid() == 0 {
		if dir := missingPrivsepDir(stderr); dir != "" && createRuntimeDir(dir) {
			stdout, stderr, err = inv.exec(ctx, args)
		}
	}
	return stdout, stderr, err
}

var (
	missingFieldRE = regexp.MustCompile(`'Match (\S+)' in configuration but '(\S+)' not in connection test specification`)
	unknownFieldRE = regexp.MustCompile(`Invalid test mode specification (\S+)`)
)

// Placeholders for -C fields a caller left out but a Match line needs:
// documentation addresses and names no real rule should single out.
var specPlaceholder = map[string]string{
	"user":    "moat-nobody",
	"host":    "moat-unknown.invalid",
	"addr":    "198.51.100.254",
	"laddr":   "192.0.2.254",
	"rdomain": "moat-none",
}

// completeSpec reads why sshd refused spec and returns a spec it will
// take, with a note saying what that leaves unverified.
func (inv *invocation) completeSpec(spec string, stderr []byte) (string, string, bool) {
	if m := missingFieldRE.FindSubmatch(stderr); m != nil {
		crit, field := string(m[1]), string(m[2])
		if specHas(spec, field) {
			return "", "", false
		}
		var val, note string
		if field == "lport" {
			named := inv.localPorts()
			p := neutralPort(named)
			val = strconv.Itoa(p)
			note = fmt.Sprintf("no local port given: Match LocalPort blocks (port %s) evaluated as not matching (lport=%d)", joinInts(named), p)
		} else {
			v, ok := specPlaceholder[field]
			if !ok {
				return "", "", false
			}
			val = v
			note = fmt.Sprintf("no %s given: Match %s blocks evaluated for %s=%s", field, crit, field, v)
		}
		return appendSpec(spec, field+"="+val), note, true
	}
	if m := unknownFieldRE.FindSubmatch(stderr); m != nil {
		bad := string(m[1])
		field, _, _ := strings.Cut(bad, "=")
		next := dropSpec(spec, field)
		if next == spec {
			return "", "", false
		}
		return next, fmt.Sprintf("this sshd cannot test %s with -C: Match blocks on it were not verified", field), true
	}
	return "", "", false
}

// localPorts are the ports Match LocalPort lines name in the config sshd
// is reading.
func (inv *invocation) localPorts() []int {
	if inv.fixture != nil {
		return inv.fixture.localPorts
	}
	return liveLocalPorts(inv.config)
}

func specHas(spec, field string) bool {
	for kv := range strings.SplitSeq(spec, ",") {
		if k, _, _ := strings.Cut(kv, "="); k == field {
			return true
		}
	}
	return false
}

func appendSpec(spec, kv string) string {
	if spec == "" {
		return kv
	}
	return spec + "," + kv
}

func dropSpec(spec, field string) string {
	var keep []string
	for kv := range strings.SplitSeq(spec, ",") {
		if k, _, _ := strings.Cut(kv, "="); k != field && kv != "" {
			keep = append(keep, kv)
		}
	}
	return strings.Join(keep, ",")
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func (inv *invocation) exec(ctx context.Context, args []string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, inv.binary, args...)
	if inv.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: inv.cred}
	}
	out := &cappedBuffer{max: maxTOutput}
	errb := &cappedBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = out, errb
	cmd.WaitDelay = waitDelay
	err = cmd.Run()
	if err == nil && out.over {
		err = fmt.Errorf("output larger than %d bytes", maxTOutput)
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return out.Bytes(), errb.Bytes(), err
}

func (inv *invocation) runError(spec string, stderr []byte, err error) error {
	cmd := "sshd -T -f " + inv.shown
	if spec != "" {
		cmd += " -C " + spec
	}
	var msg string
	if inv.fixture == nil {
		msg = trimStderr(stderr)
	} else {
		// Drop the expected complaints about host keys sshd may not read,
		// and name the fixture's files, not their temporary copies.
		msg = trimStderr(stderr, "Unable to load host key")
		msg = strings.ReplaceAll(msg, inv.fixture.mirror, inv.root)
	}
	return &RunError{Command: cmd, Stderr: msg, Hint: hintFor(msg, err, inv), Err: err}
}

// trimStderr joins the non-blank lines of b with "; ", leaving out those
// starting with one of skip.
func trimStderr(b []byte, skip ...string) string {
	var lines []string
	for l := range strings.SplitSeq(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !slices.ContainsFunc(skip, func(p string) bool { return strings.HasPrefix(l, p) }) {
			lines = append(lines, l)
		}
	}
	return clipLong(strings.Join(lines, "; "), 2048)
}

func clipLong(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

var privsepRE = regexp.MustCompile(`Missing privilege separation directory: (\S+)`)

func missingPrivsepDir(stderr []byte) string {
	m := privsepRE.FindSubmatch(stderr)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// createRuntimeDir creates sshd's privilege separation directory the way
// systemd's RuntimeDirectory=sshd would (root-owned, 0755), only where
// that is a runtime directory on tmpfs: it is not configuration, and it
// vanishes at reboot.
func createRuntimeDir(dir string) bool {
	clean := filepath.Clean(dir)
	if clean != dir || !(strings.HasPrefix(dir, "/run/") || strings.HasPrefix(dir, "/var/run/")) {
		return false
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return false
	}
	return true
}

func hintFor(stderr string, err error, inv *invocation) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "sshd -T did not finish in time; run it by hand to see why"
	case strings.Contains(stderr, "Missing privilege separation directory"):
		dir := missingPrivsepDir([]byte(stderr))
		return "create it as root: install -d -m 0755 " + dir + " (systemd makes it only while ssh.service runs)"
	case strings.Contains(stderr, "must be owned by root and not group or world-writable"):
		return "make that directory root-owned and mode 0755"
	case strings.Contains(stderr, "Privilege separation user") && strings.Contains(stderr, "does not exist"):
		return "the sshd system user is missing; reinstall openssh-server"
	case strings.Contains(stderr, "no hostkeys available") && os.Geteuid() != 0:
		return "run as root: sshd -T must read the host keys"
	case strings.Contains(stderr, "no hostkeys available"):
		return "generate host keys with: ssh-keygen -A"
	case errors.Is(err, errNoOutput):
		return "check the binary is OpenSSH's sshd"
	case strings.Contains(stderr, " line "):
		return "fix the line named above; check with: sshd -t -f " + inv.shown
	}
	return "check the configuration with: sshd -t -f " + inv.shown
}

// findSSHD resolves the sshd binary to an absolute path (sshd refuses to
// re-exec from a relative one, and a relative path would depend on cwd).
func findSSHD(name string) (string, error) {
	return findBinary(name, "sshd", "/usr/sbin/sshd")
}

func findSSH() (string, error) { return findBinary("", "ssh", "/usr/bin/ssh") }

func findBinary(name, def, fallback string) (string, error) {
	if name == "" {
		p, err := exec.LookPath(def)
		if err != nil {
			if _, serr := os.Stat(fallback); serr != nil {
				return "", fmt.Errorf("find %s: not in PATH nor at %s: %w (hint: install openssh-server and openssh-client)", def, fallback, exec.ErrNotFound)
			}
			p = fallback
		}
		name = p
	} else if !strings.ContainsRune(name, '/') {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("find %s: %w", name, err)
		}
		name = p
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", name, err)
	}
	return abs, nil
}

// cappedBuffer keeps the first max bytes written and drops the rest, so a
// runaway child cannot exhaust memory; over records that it did.
type cappedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
