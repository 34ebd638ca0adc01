package harden

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/sshd"
)

// sshdFiles are the config files sshd reads, as planned.
type sshdFiles struct {
	main   []byte            // main file as it will be
	others map[string][]byte // included files moat rewrites, by path
	window []byte            // the drop-in during the window
	final  []byte            // the drop-in after confirm (nil: same as window)
}

func planSSHD(ctx context.Context, f *facts, in Input, admin *adminPlan, p *Plan) (*change.Step, error) {
	st := &change.Step{Layer: "sshd"}
	curs, err := sshdRunner(f, f.root).effective(ctx, []sshd.Context{{}})
	if err != nil {
		return nil, fmt.Errorf("sshd's current configuration: %w", err)
	}
	cur := curs[0]
	for _, n := range cur.Notes() {
		st.Warnings = append(st.Warnings, "sshd -T could not evaluate everything as asked: "+n)
	}
	var old []uint16
	for _, v := range cur.All("port") {
		if n, err := strconv.Atoi(v); err == nil {
			old = append(old, uint16(n))
		}
	}
	slices.Sort(old)
	old = slices.Compact(old)
	want := uint16(in.SSH.Port)
	if want == 0 {
		want = 22
	}
	ports := slices.Clone(old)
	if !slices.Contains(ports, want) {
		ports = append(ports, want)
	}
	slices.Sort(ports)
	p.SSH = SSHPlan{Port: want, Ports: ports, OldPorts: old, ProbeUser: admin.user}
	moving := p.SSH.Moved()
	if moving {
		st.Summary = append(st.Summary, fmt.Sprintf("move sshd from port %s to %d: both stay open until moat confirm", portList(old), want))
	}
	if p.SSH.ProbeUser == "" {
		p.SSH.ProbeUser = "root"
	}

	exp := exposure(in.SSH.Exposure)
	vpnAddrs := f.vpnAddrs(in.VPN)
	if exp == "vpn" {
		if len(vpnAddrs) == 0 {
			p.Refusals = append(p.Refusals, "ssh.exposure is vpn, but no VPN interface is up with an address: sshd would listen nowhere (bring the VPN up, or stay at vpn+public)")
		}
		p.SSH.Listen = vpnAddrs
	}
	p.SSH.VPNLogin = VPNLoginSeen(ctx, f.root, f.opt.Session, in.VPN, vpnAddrs)
	if exp == "vpn" && p.SSH.VPNLogin == "" {
		msg := "ssh.exposure vpn closes SSH to the internet, and no login over the VPN has been seen yet: log in once over the VPN (stage vpn+public) first, or apply with --force"
		if f.opt.Force {
			st.Warnings = append(st.Warnings, msg+" (--force given: going ahead)")
			p.SSH.Forced = true
		} else {
			p.Refusals = append(p.Refusals, msg)
		}
	}
	if exp == "vpn" {
		if msg := secondPath(ctx, f.opt.SecondPaths, &p.SSH); msg != "" {
			if f.opt.Force {
				st.Warnings = append(st.Warnings, msg+" (--force given: going ahead)")
				p.SSH.Forced = true
			} else {
				p.Refusals = append(p.Refusals, msg)
			}
		}
	}

	kex, ciphers, macs := supportedAlgorithms(ctx)
	params := SSHDParams{
		Source: in.Source, Ports: []uint16{want}, Listen: p.SSH.Listen,
		Password: in.SSH.PasswordAuthentication, PermitRootLogin: in.SSH.PermitRootLogin,
		MaxAuthTries: in.SSH.MaxAuthTries, LoginGraceTime: in.SSH.LoginGraceTime.D(),
		AllowGroups: in.SSH.AllowGroups,
	}
	params.Kex, params.Ciphers, params.MACs = Algorithms(kex, ciphers, macs)
	if len(in.SSH.AllowUsers) > 0 {
		params.AllowUsers = slices.Clone(in.SSH.AllowUsers)
		if admin.user != "" && !slices.Contains(params.AllowUsers, admin.user) {
			params.AllowUsers = append(params.AllowUsers, admin.user)
		}
	}
	if len(params.Kex) > 0 && !sshd.PostQuantumKex(params.Kex[0]) {
		st.Warnings = append(st.Warnings, "this OpenSSH has no post-quantum key exchange (sntrup761 came in 8.5, ML-KEM in 9.9): upgrade openssh-server")
	}
	files := sshdFiles{others: map[string][]byte{}}
	final := params
	params.Ports, params.Moving = ports, moving
	files.window = []byte(RenderSSHD(params))
	if moving {
		files.final = []byte(RenderSSHD(final))
	}

	mainData, err := os.ReadFile(change.HostPath(f.root, MainConfig))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MainConfig, err)
	}
	fix := FixMainConfig(mainData)
	files.main = fix.Data
	st.Summary = append(st.Summary, fix.Notes...)
	included, err := includedFiles(f.root, fix.Data)
	if err != nil {
		return nil, err
	}
	for _, inc := range included {
		if inc == DropIn {
			continue
		}
		data, err := os.ReadFile(change.HostPath(f.root, inc))
		if err != nil {
			continue
		}
		if out, notes := CommentListenLines(inc, data); len(notes) > 0 {
			files.others[inc] = out
			st.Summary = append(st.Summary, notes...)
		}
	}

	// The candidate, evaluated by sshd itself before anything is written.
	v := newVerifier(f, in, admin, params, p.SSH)
	probs, err := v.check(ctx, candidateRunner(f, files))
	if err != nil {
		return nil, fmt.Errorf("evaluate the new sshd configuration: %w", err)
	}
	p.Refusals = append(p.Refusals, probs...)
	if w := v.operatorWarning(ctx, candidateRunner(f, files), f.opt.Operator, want); w != "" {
		st.Warnings = append(st.Warnings, w)
	}

	curDrop, _ := change.ReadCurrent(f.root, DropIn)
	if string(curDrop) != string(files.window) {
		st.Files = append(st.Files, change.File{Path: DropIn, Data: files.window, Mode: 0o644})
		if curDrop == nil {
			st.Summary = append(st.Summary, "write "+DropIn)
		} else {
			st.Summary = append(st.Summary, "rewrite "+DropIn)
		}
	}
	if string(mainData) != string(files.main) {
		st.Files = append(st.Files, change.File{Path: MainConfig, Data: files.main, Mode: modeOf(f.root, MainConfig, 0o644)})
	}
	for _, name := range slices.Sorted(mapKeys(files.others)) {
		st.Files = append(st.Files, change.File{Path: name, Data: files.others[name], Mode: modeOf(f.root, name, 0o644)})
	}
	if files.final != nil {
		st.Final = append(st.Final, change.File{Path: DropIn, Data: files.final, Mode: 0o644})
		st.Confirm = append(st.Confirm, change.NewAction(ActionSSHDReload, nil))
	}
	if len(st.Files) == 0 && files.final == nil {
		st.Summary = append(st.Summary, "sshd already runs with this configuration: nothing to do")
		return st, nil
	}
	st.Undo = append(st.Undo, change.NewAction(ActionSSHDReload, nil))
	written := st.Files
	st.Apply = func(ctx context.Context, w *change.Writer) error {
		if err := w.WriteAll(written); err != nil {
			return err
		}
		// sshd -t, then the effective values of the written files.
		if err := testConfig(ctx, f, f.root); err != nil {
			return err
		}
		probs, err := v.check(ctx, sshdRunner(f, f.root))
		if err != nil {
			return err
		}
		if len(probs) > 0 {
			return fmt.Errorf("sshd -T after writing: %s", strings.Join(probs, "; "))
		}
		_, err = ReloadSSHD(ctx, f.root)
		return err
	}
	return st, nil
}

func portList(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func modeOf(root, p string, def os.FileMode) os.FileMode {
	if fi, err := os.Stat(change.HostPath(root, p)); err == nil {
		return fi.Mode().Perm()
	}
	return def
}

// sshdRunner evaluates the config under root: the live files (as root)
// or a fixture copy.
func sshdRunner(f *facts, root string) evaluator {
	r := sshd.Runner{Binary: f.opt.SSHD, Root: root}
	if f.live && os.Geteuid() != 0 {
		r.Unprivileged = true
	}
	return runnerEval{r}
}

// evaluator runs sshd -T for connection contexts.
type evaluator interface {
	effective(ctx context.Context, cs []sshd.Context) ([]sshd.Effective, error)
}

type runnerEval struct{ r sshd.Runner }

func (e runnerEval) effective(ctx context.Context, cs []sshd.Context) ([]sshd.Effective, error) {
	return e.r.EffectiveMany(ctx, cs)
}

// candidate evaluates the planned files without writing them: the config
// files sshd would read are copied to a temporary root with the planned
// ones in their place, and sshd -T runs on that.
type candidate struct {
	f     *facts
	files sshdFiles
}

func candidateRunner(f *facts, files sshdFiles) evaluator { return candidate{f, files} }

func (c candidate) effective(ctx context.Context, cs []sshd.Context) ([]sshd.Effective, error) {
	dir, err := os.MkdirTemp("", "moat-sshd-candidate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	planned := map[string][]byte{MainConfig: c.files.main, DropIn: c.files.window}
	for k, v := range c.files.others {
		planned[k] = v
	}
	if err := copyConfigTree(c.f.root, dir, planned); err != nil {
		return nil, fmt.Errorf("copy the sshd configuration: %w", err)
	}
	return sshd.Runner{Binary: c.f.opt.SSHD, Root: dir}.EffectiveMany(ctx, cs)
}

// copyConfigTree copies to dst the main config and everything it
// includes (recursively, bounded), with planned files replacing or adding
// to what is under root.
func copyConfigTree(root, dst string, planned map[string][]byte) error {
	read := func(p string) ([]byte, error) {
		if b, ok := planned[p]; ok {
			return b, nil
		}
		return os.ReadFile(change.HostPath(root, p))
	}
	seen := map[string]bool{}
	queue := []string{MainConfig}
	for name := range planned {
		queue = append(queue, name)
	}
	for len(queue) > 0 && len(seen) < 256 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		data, err := read(p)
		if err != nil {
			continue // sshd reports what it misses itself
		}
		out := filepath.Join(dst, p)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return err
		}
		for _, pat := range includePatterns(data) {
			matches, _ := filepath.Glob(change.HostPath(root, pat))
			for _, m := range matches {
				rel := "/" + strings.TrimPrefix(strings.TrimPrefix(m, filepath.Clean(root)), "/")
				if root == "" || root == "/" {
					rel = m
				}
				queue = append(queue, rel)
			}
			// Planned files the pattern matches but that do not exist yet.
			for name := range planned {
				if ok, _ := path.Match(pat, name); ok {
					queue = append(queue, name)
				}
			}
		}
	}
	return nil
}

// includePatterns returns the absolute patterns of a config's Include
// lines (relative ones resolved against /etc/ssh, as sshd does).
func includePatterns(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		kw, args := splitDirective(l)
		if !strings.EqualFold(kw, "include") {
			continue
		}
		for _, p := range includeArgs(args) {
			if strings.HasPrefix(p, "~") {
				continue
			}
			if !strings.HasPrefix(p, "/") {
				p = "/etc/ssh/" + p
			}
			out = append(out, path.Clean(p))
		}
	}
	return out
}

// includedFiles lists the files a main config includes that exist under
// root, recursively.
func includedFiles(root string, main []byte) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	queue := includePatterns(main)
	for len(queue) > 0 && len(seen) < 256 {
		pat := queue[0]
		queue = queue[1:]
		matches, _ := filepath.Glob(change.HostPath(root, pat))
		sort.Strings(matches)
		for _, m := range matches {
			rel := m
			if root != "" && root != "/" {
				rel = "/" + strings.TrimPrefix(strings.TrimPrefix(m, filepath.Clean(root)), "/")
			}
			if seen[rel] {
				continue
			}
			seen[rel] = true
			if fi, err := os.Stat(m); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			out = append(out, rel)
			if data, err := os.ReadFile(m); err == nil {
				queue = append(queue, includePatterns(data)...)
			}
		}
	}
	return out, nil
}

// supportedAlgorithms asks the installed OpenSSH what it implements;
// nil lists where it cannot tell.
func supportedAlgorithms(ctx context.Context) (kex, ciphers, macs []string) {
	var wg sync.WaitGroup
	wg.Go(func() { kex, _ = sshd.Query(ctx, "kex") })
	wg.Go(func() { ciphers, _ = sshd.Query(ctx, "cipher") })
	wg.Go(func() { macs, _ = sshd.Query(ctx, "mac") })
	wg.Wait()
	return kex, ciphers, macs
}

// secondPath runs the VPNs' second-path checks: one passing is enough
// (its evidence goes into sp); none passing returns the refusal naming
// every reason.
func secondPath(ctx context.Context, checks []PathCheck, sp *SSHPlan) string {
	if len(checks) == 0 {
		return ""
	}
	var why []string
	for _, c := range checks {
		ev, err := c(ctx)
		if err == nil {
			sp.SecondPath = ev
			return ""
		}
		why = append(why, err.Error())
	}
	return "ssh.exposure vpn needs a second working path into the VPN, and none was found: " + strings.Join(why, "; ") + " (or apply with --force, which prints the break-glass recipe)"
}
