// Command packaging builds moat's .deb with nfpm (as a library, so no
// packaging tool has to be installed): the static binary, the hardened
// units, the man pages and shell completions the binary generated at
// build time, the annotated example config, and the maintainer scripts in
// debian/. It is its own module so nfpm never enters the moat binary.
//
//	go run . --version 0.11.0 --arch amd64 --bin ../bin/linux_amd64/moat --gen ../bin/gen --out ../dist
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "packaging: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("packaging", flag.ContinueOnError)
	version := fs.String("version", "", "package version (scripts/version.sh)")
	arch := fs.String("arch", "amd64", "Debian architecture: amd64 or arm64")
	bin := fs.String("bin", "", "the moat binary built for arch")
	gen := fs.String("gen", "", "directory with what `moat man` and `moat completion` generated: moat.1, moat.yaml.5, moat.bash, _moat, moat.fish")
	repo := fs.String("repo", "..", "the repository root (examples/, packaging/debian/)")
	out := fs.String("out", ".", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *bin == "" || *gen == "" {
		return errors.New("--version, --bin and --gen are required")
	}
	work, err := os.MkdirTemp("", "moat-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	mtime := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			mtime = time.Unix(sec, 0).UTC()
		}
	}
	// Debian wants man pages and the changelog compressed with gzip -9n.
	gz := func(src, name string) (string, error) {
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		w.Write(data)
		if err := w.Close(); err != nil {
			return "", err
		}
		p := filepath.Join(work, name)
		return p, os.WriteFile(p, b.Bytes(), 0o644)
	}
	man1, err := gz(filepath.Join(*gen, "moat.1"), "moat.1.gz")
	if err != nil {
		return err
	}
	man5, err := gz(filepath.Join(*gen, "moat.yaml.5"), "moat.yaml.5.gz")
	if err != nil {
		return err
	}
	changelog := filepath.Join(work, "changelog")
	entry := fmt.Sprintf("moat (%s) unstable; urgency=medium\n\n  * Release %s: see https://github.com/moat-sh/moat.\n\n -- moat authors <moat@moat.sh>  %s\n",
		*version, *version, mtime.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	if err := os.WriteFile(changelog, []byte(entry), 0o644); err != nil {
		return err
	}
	changelogGz, err := gz(changelog, "changelog.gz")
	if err != nil {
		return err
	}

	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode, MTime: mtime}}
	}
	debian := filepath.Join(*repo, "packaging/debian")
	info := &nfpm.Info{
		Name:        "moat",
		Arch:        *arch,
		Platform:    "linux",
		Version:     *version,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "moat authors <moat@moat.sh>",
		Homepage:    "https://github.com/moat-sh/moat",
		License:     "moat",
		MTime:       mtime,
		Description: "layered defences for a Linux VPS, applied without lockout\n moat audits a host, hardens sshd and the kernel, renders an nftables\n firewall, bans abusive sources from logs, runs an edge gateway and sends\n alerts, from one static binary. Every change is a transaction that is\n rolled back unless confirmed from a new SSH connection.",
		Overridables: nfpm.Overridables{
			Recommends: []string{"nftables", "openssh-server"},
			Contents: files.Contents{
				file(*bin, "/usr/bin/moat", 0o755),
				file(filepath.Join(*repo, "examples/moat.service"), "/lib/systemd/system/moat.service", 0o644),
				file(filepath.Join(*repo, "examples/moat-firewall.service"), "/lib/systemd/system/moat-firewall.service", 0o644),
				file(filepath.Join(*repo, "examples/moat-vpn.service"), "/lib/systemd/system/moat-vpn.service", 0o644),
				file(man1, "/usr/share/man/man1/moat.1.gz", 0o644),
				file(man5, "/usr/share/man/man5/moat.yaml.5.gz", 0o644),
				file(filepath.Join(*gen, "moat.bash"), "/usr/share/bash-completion/completions/moat", 0o644),
				file(filepath.Join(*gen, "_moat"), "/usr/share/zsh/vendor-completions/_moat", 0o644),
				file(filepath.Join(*gen, "moat.fish"), "/usr/share/fish/vendor_completions.d/moat.fish", 0o644),
				file(filepath.Join(*repo, "examples/moat.yaml"), "/usr/share/doc/moat/examples/moat.yaml", 0o644),
				file(filepath.Join(*repo, "examples/minimal.yaml"), "/usr/share/doc/moat/examples/minimal.yaml", 0o644),
				file(filepath.Join(debian, "copyright"), "/usr/share/doc/moat/copyright", 0o644),
				file(changelogGz, "/usr/share/doc/moat/changelog.gz", 0o644),
				file(filepath.Join(debian, "lintian-overrides"), "/usr/share/lintian/overrides/moat", 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(debian, "postinst"),
				PreRemove:   filepath.Join(debian, "prerm"),
				PostRemove:  filepath.Join(debian, "postrm"),
			},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return err
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	name := pkg.ConventionalFileName(info)
	tmp, err := os.CreateTemp(*out, ".moat-*.deb")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := pkg.Package(info, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("build %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	dst := filepath.Join(*out, name)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	fmt.Println(strings.TrimPrefix(dst, "./"))
	return nil
}
