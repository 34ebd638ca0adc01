package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moat-sh/moat/examples"
	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/install"
)

func init() {
	register(command{"install", "install moat without a package: binary, moat.service, directories, completions, man pages", 97, runInstall})
	register(command{"uninstall", "uninstall [--purge]: remove what install put in place; table inet moat only if SSH stays reachable", 98, runUninstall})
}

func runInstall(e *env, args []string) int {
	f := newFlags(e, "install", "install [--prefix /usr/local] [--root DIR]")
	f.StringVar(&f.root, "root", "", "install into the tree under `dir` instead of / (an image, a test)")
	prefix := f.String("prefix", "/usr/local", "install the binary, completions and man pages under `dir`")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 0 {
		f.Usage()
		return ExitUsage
	}
	if !absRoot(e, f) {
		return ExitUsage
	}
	// A package-managed moat is installed and removed by apt, not moat.
	if install.Packaged(context.Background(), f.root) {
		fmt.Fprintln(e.stderr, "moat install: moat is installed by its Debian package here (apt install ./moat_*.deb upgrades it)")
		return ExitUsage
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat install: find this binary: %v\n", err)
		return ExitRuntime
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat install: %v\n", err)
		return ExitRuntime
	}
	l := install.Layout{Prefix: filepath.Clean("/" + *prefix)}
	t := tree()
	files := install.Files{
		Binary:      bin,
		Service:     install.ServiceFor(examples.Service, examples.Binary, l.Binary()),
		VPNService:  install.ServiceFor(examples.VPNService, examples.Binary, l.Binary()),
		Completions: map[string][]byte{},
		Man:         map[string][]byte{},
		Config: func() ([]byte, error) {
			var out, errOut bytes.Buffer
			ie := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, log: e.log}
			if code := runInit(ie, []string{"--root", f.root}); code != ExitOK {
				return nil, fmt.Errorf("moat init: %s", strings.TrimSpace(errOut.String()))
			}
			return out.Bytes(), nil
		},
	}
	for _, sh := range completionShells {
		var b bytes.Buffer
		map[string]func(io.Writer, []*node){"bash": completeBash, "zsh": completeZsh, "fish": completeFish}[sh](&b, t)
		files.Completions[sh] = b.Bytes()
	}
	var man, cfgMan bytes.Buffer
	manPage(&man, t)
	configPage(&cfgMan, []byte(examples.Config))
	files.Man["moat.1"], files.Man["moat.yaml.5"] = man.Bytes(), cfgMan.Bytes()

	steps, err := install.Install(f.root, l, files)
	for _, s := range steps {
		fmt.Fprintln(e.stdout, s)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat install: %v\n", err)
		return ExitRuntime
	}
	if f.root == "" && systemdRunning() {
		if out, err := exec.Command("systemctl", "daemon-reload").CombinedOutput(); err != nil {
			fmt.Fprintf(e.stderr, "moat install: systemctl daemon-reload: %v: %s\n", err, out)
		}
	}
	fmt.Fprintf(e.stdout, `
moat is installed; nothing was enabled or applied. Next:
  moat config check              # review the starter config, %[1]s
  moat plan; moat apply          # harden and firewall, rolled back unless confirmed
  systemctl enable --now moat    # the daemon: guard, gateway, alerts
`, install.ConfigPath)
	return ExitOK
}

// absRoot makes --root absolute: the atomic writes resolve every path
// from /, so a relative root would land under / itself.
func absRoot(e *env, f *flags) bool {
	if f.root == "" {
		return true
	}
	abs, err := filepath.Abs(f.root)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat: --root %s: %v\n", f.root, err)
		return false
	}
	f.root = abs
	return true
}

// systemdRunning reports whether systemd is PID 1 (sd_booted's test).
func systemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func runUninstall(e *env, args []string) int {
	f := newFlags(e, "uninstall", "uninstall [--purge] [--keep-firewall] [--prefix /usr/local] [--root DIR]")
	f.StringVar(&f.root, "root", "", "uninstall from the tree under `dir` instead of / (the firewall is still this host's)")
	prefix := f.String("prefix", "/usr/local", "the `dir` moat install used")
	purge := f.Bool("purge", false, "also remove /etc/moat, /var/lib/moat and /var/log/moat")
	keepFW := f.Bool("keep-firewall", false, "leave table inet moat loaded (its boot unit is removed all the same)")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 0 {
		f.Usage()
		return ExitUsage
	}
	if !absRoot(e, f) {
		return ExitUsage
	}
	if install.Packaged(context.Background(), f.root) {
		fmt.Fprintln(e.stderr, "moat uninstall: moat is installed by its Debian package here: apt remove moat (apt purge moat also removes /etc/moat and the state)")
		return ExitUsage
	}
	// A change waiting for confirm has a rollback timer that runs this
	// binary: removing it would strand the change half-applied.
	if id, err := change.NewStore(f.root).Pending(); err != nil || id != "" {
		fmt.Fprintf(e.stderr, "moat uninstall: change %s is waiting for confirm (%v); run moat confirm or moat rollback first\n", id, err)
		return ExitUsage
	}
	// An enabled moat-vpn.service carries the WireGuard interface SSH may
	// depend on (ssh.exposure: vpn): removing the binary it runs would
	// take the way in away at the next restart.
	vpnWants := change.HostPath(f.root, filepath.Join(install.UnitDir, "multi-user.target.wants", install.VPNServiceName))
	if _, err := os.Lstat(vpnWants); err == nil {
		fmt.Fprintf(e.stderr, "moat uninstall: %s is enabled: it keeps the WireGuard interface up, which SSH may depend on; move SSH back first (moat expose ssh public), then systemctl disable --now %s, then uninstall\n", install.VPNServiceName, install.VPNServiceName)
		return ExitUsage
	}
	var paths []firewall.Path
	if !*keepFW {
		// Judged before anything is touched: a refusal leaves the host as
		// it was, daemon running.
		var code int
		var ok bool
		if paths, code, ok = checkTableRemoval(e, f); !ok {
			return code
		}
	}
	live := f.root == "" && systemdRunning()
	if live {
		// Stopped before the table goes, so it does not recreate it.
		exec.Command("systemctl", "disable", "--now", install.ServiceName).Run()
	}
	if paths != nil {
		if code, ok := removeTable(e, paths); !ok {
			return code
		}
	}
	units := []string{
		filepath.Join(install.UnitDir, install.ServiceName),
		filepath.Join(install.UnitDir, "multi-user.target.wants", install.ServiceName),
		filepath.Join(install.UnitDir, install.VPNServiceName),
		firewall.WantsLink, firewall.UnitPath,
		change.GuardWantsLink, change.GuardUnitPath,
	}
	steps, err := install.Uninstall(f.root, install.Layout{Prefix: filepath.Clean("/" + *prefix)}, units, *purge)
	for _, s := range steps {
		fmt.Fprintln(e.stdout, s)
	}
	if live {
		exec.Command("systemctl", "daemon-reload").Run()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat uninstall: %v\n", err)
		return ExitRuntime
	}
	if !*purge {
		fmt.Fprintln(e.stdout, "kept /etc/moat and the state (moat uninstall --purge removes them)")
	}
	return ExitOK
}

// checkTableRemoval is the lockout check apply uses, for the host without
// table inet moat: with the other tables alone, the operator's session,
// the admin sources or the VPN must still reach sshd. It returns the
// paths to check again at removal, nil when there is no table (or no nft).
func checkTableRemoval(e *env, f *flags) ([]firewall.Path, int, bool) {
	if _, err := exec.LookPath("nft"); err != nil {
		if _, err := os.Stat("/usr/sbin/nft"); err != nil {
			return nil, 0, true // no nftables, no table
		}
	}
	path := config.Path(f.config)
	if f.config == "" && os.Getenv("MOAT_CONFIG") == "" {
		path = change.HostPath(f.root, install.ConfigPath)
	}
	c, err := config.Load(path, f.explicitConfig())
	if err != nil {
		fmt.Fprintf(e.stderr, "moat uninstall: %v\n(the config says how you reach sshd; fix it, or run with --keep-firewall)\n", err)
		return nil, ExitUsage, false
	}
	h := host.New("")
	spec, code, ok := firewallSpec(e, c, h)
	if !ok {
		return nil, code, false
	}
	paths, err := firewall.OperatorPaths(&spec, operatorReach(h, os.Getenv))
	if err != nil {
		fmt.Fprintf(e.stderr, "moat uninstall: %v\n", err)
		return nil, ExitRuntime, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := firewall.CheckRemoval(ctx, paths)
	if code, ok := removalVerdict(e, results, err); !ok {
		return nil, code, false
	} else if errors.Is(err, firewall.ErrNotLoaded) {
		return nil, 0, true
	}
	return paths, 0, true
}

// removeTable removes table inet moat, checking again first.
func removeTable(e *env, paths []firewall.Path) (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := firewall.Remove(ctx, paths)
	if code, ok := removalVerdict(e, results, err); !ok {
		return code, false
	} else if errors.Is(err, firewall.ErrNotLoaded) {
		return 0, true
	}
	fmt.Fprintln(e.stdout, "your ways into sshd without table inet moat:")
	writePaths(e.stdout, results)
	fmt.Fprintln(e.stdout, "removed   table inet moat")
	return 0, true
}

// removalVerdict reports a refused or failed removal.
func removalVerdict(e *env, results []firewall.PathResult, err error) (int, bool) {
	var lock *firewall.LockoutError
	switch {
	case err == nil, errors.Is(err, firewall.ErrNotLoaded):
		return 0, true
	case errors.As(err, &lock):
		fmt.Fprintln(e.stderr, "moat uninstall: refusing: with table inet moat gone, your other nftables tables would leave no way into sshd:")
		writePaths(e.stderr, results)
		fmt.Fprintln(e.stderr, "nothing was removed. Open sshd in your own ruleset (/etc/nftables.conf) first, or keep moat's table: moat uninstall --keep-firewall")
		return ExitRuntime, false
	default:
		fmt.Fprintf(e.stderr, "moat uninstall: table inet moat: %v\n", err)
		return ExitRuntime, false
	}
}
