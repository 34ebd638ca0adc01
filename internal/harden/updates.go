package harden

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/term"
)

// Where apt's periodic jobs and unattended-upgrades read their settings.
// 52moat- sorts after the package's own 50unattended-upgrades, so its
// values win and its origin patterns add to the list.
const (
	AutoUpgrades     = "/etc/apt/apt.conf.d/20auto-upgrades"
	UnattendedDropIn = "/etc/apt/apt.conf.d/52moat-unattended-upgrades"
	unattendedPkg    = "unattended-upgrades"
)

// securityOrigins are the security archives of Debian and Ubuntu.
var securityOrigins = []string{
	"origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
	"origin=Debian,codename=${distro_codename},label=Debian-Security",
	"origin=Ubuntu,archive=${distro_codename}-security",
}

// RenderAutoUpgrades is 20auto-upgrades: apt refreshes its lists and runs
// unattended-upgrades every day.
func RenderAutoUpgrades(source string) string {
	return header(source) + `
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
`
}

// RenderUnattended is moat's drop-in for unattended-upgrades: the
// security origins, and the reboot time when one is configured.
func RenderUnattended(source, rebootTime string) string {
	var b strings.Builder
	b.WriteString(header(source, "Adds to the package's 50unattended-upgrades: lists add up, later values win."))
	b.WriteString("\nUnattended-Upgrade::Origins-Pattern {\n")
	for _, o := range securityOrigins {
		fmt.Fprintf(&b, "\t%q;\n", o)
	}
	b.WriteString("};\n")
	if rebootTime != "" {
		b.WriteString("\n// Reboot by itself when an update needs it, at this time.\n")
		b.WriteString("Unattended-Upgrade::Automatic-Reboot \"true\";\n")
		fmt.Fprintf(&b, "Unattended-Upgrade::Automatic-Reboot-Time %q;\n", rebootTime)
	}
	return b.String()
}

func planUpdates(f *facts, in Input) []*change.Step {
	if !enabled(in.Host.Updates.Unattended, true) {
		return nil
	}
	st := &change.Step{Layer: "updates"}
	install := false
	switch pkg, known := f.packages[unattendedPkg]; {
	case f.packages == nil:
		st.Warnings = append(st.Warnings, "cannot read dpkg's status: whether unattended-upgrades is installed is unknown")
	case known && pkg.Installed:
	case f.live:
		install = true
		st.Summary = append(st.Summary, "install unattended-upgrades (apt-get install)")
	default:
		st.Warnings = append(st.Warnings, "unattended-upgrades is not installed; apply installs it on a live host, not under --root")
	}
	files := []change.File{
		{Path: AutoUpgrades, Data: []byte(RenderAutoUpgrades(in.Source)), Mode: 0o644},
		{Path: UnattendedDropIn, Data: []byte(RenderUnattended(in.Source, in.Host.Updates.RebootTime)), Mode: 0o644},
	}
	for _, fl := range files {
		cur, _ := change.ReadCurrent(f.root, fl.Path)
		if !bytes.Equal(cur, fl.Data) {
			st.Files = append(st.Files, fl)
			st.Summary = append(st.Summary, "write "+fl.Path)
		}
	}
	if len(st.Files) == 0 && !install {
		st.Summary = append(st.Summary, "unattended-upgrades is set up: nothing to do")
		return []*change.Step{st}
	}
	written := st.Files
	root, reboot := f.root, in.Host.Updates.RebootTime
	st.Apply = func(ctx context.Context, w *change.Writer) error {
		if install {
			if err := installPackage(ctx, unattendedPkg); err != nil {
				return err
			}
		}
		if err := w.WriteAll(written); err != nil {
			return err
		}
		return VerifyUpdates(ctx, root, reboot)
	}
	return []*change.Step{st}
}

// installPackage runs apt-get install, non-interactively, bounded. A
// package install is not undone by a rollback: removing a security
// updater would be the riskier half.
func installPackage(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "install", "--yes", "--quiet", "--no-install-recommends", name)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.WaitDelay = 10 * time.Second
	// apt takes seconds to minutes: a progress line, on the apply's output.
	p := term.Begin(ctx, "apt-get install "+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.Done("failed")
		return fmt.Errorf("apt-get install %s: %w: %s (hint: run apt-get update, or set host.updates.unattended: false)", name, err, lastLines(out, 3))
	}
	p.Done("installed")
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// VerifyUpdates asks apt itself (apt-config dump, reading the files under
// root) whether the periodic jobs and the security origins are on, as
// later files could turn them off again.
func VerifyUpdates(ctx context.Context, root, rebootTime string) error {
	if _, err := exec.LookPath("apt-config"); err != nil {
		return nil // not a Debian-like host: nothing reads these files anyway
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-config", "dump")
	cmd.Env = os.Environ()
	if root != "" && root != "/" {
		// APT_CONFIG is read before the configuration directories, so
		// its Dir moves them all under the root.
		tmp, err := os.CreateTemp("", "moat-apt-*.conf")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		abs, _ := filepath.Abs(root)
		fmt.Fprintf(tmp, "Dir %q;\n", abs+"/")
		tmp.Close()
		cmd.Env = append(cmd.Env, "APT_CONFIG="+tmp.Name())
	}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("apt-config dump: %w", err)
	}
	conf, err := host.ParseAptConfig(bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("apt-config dump: %w", err)
	}
	var probs []string
	want := func(key, val string) {
		if conf[key] != val {
			probs = append(probs, fmt.Sprintf("%s is %q, want %q", key, conf[key], val))
		}
	}
	want("APT::Periodic::Update-Package-Lists", "1")
	want("APT::Periodic::Unattended-Upgrade", "1")
	if rebootTime != "" {
		want("Unattended-Upgrade::Automatic-Reboot", "true")
		want("Unattended-Upgrade::Automatic-Reboot-Time", rebootTime)
	}
	pats := conf["Unattended-Upgrade::Origins-Pattern"]
	for _, o := range securityOrigins {
		if !strings.Contains(pats, o) {
			probs = append(probs, "Unattended-Upgrade::Origins-Pattern lacks "+o)
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("apt-config dump after writing: %s (a file sorting after %s overrides it)", strings.Join(probs, "; "), filepath.Base(UnattendedDropIn))
	}
	return nil
}
