package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moat-sh/moat/examples"
	"github.com/moat-sh/moat/internal/change"
)

// `moat man --dir DIR` writes moat(1) from the command tree (tree.go) and
// moat.yaml(5) around the annotated example config the binary embeds; the
// packages build them at build time, so the pages list the flags the
// binary really parses.

func init() {
	register(command{"man", "man [--dir DIR]: write the man pages moat.1 and moat.yaml.5 (without DIR: moat.1 to stdout)", 96, runMan})
}

func runMan(e *env, args []string) int {
	f := newFlags(e, "man", "man [--dir DIR]")
	dir := f.String("dir", "", "write the pages to `dir` (created if missing); without it moat.1 goes to stdout")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 0 {
		f.Usage()
		return ExitUsage
	}
	var page bytes.Buffer
	manPage(&page, tree())
	if *dir == "" {
		e.stdout.Write(page.Bytes())
		return ExitOK
	}
	var cfgPage bytes.Buffer
	configPage(&cfgPage, []byte(examples.Config))
	pages := map[string][]byte{"moat.1": page.Bytes(), "moat.yaml.5": cfgPage.Bytes()}
	// WriteAtomic resolves paths from /: make DIR absolute here.
	d, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat man: %v\n", err)
		return ExitUsage
	}
	*dir = d
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintf(e.stderr, "moat man: %v\n", err)
		return ExitRuntime
	}
	for name, data := range pages {
		if err := change.WriteAtomic(filepath.Join(*dir, name), data, 0o644); err != nil {
			fmt.Fprintf(e.stderr, "moat man: %v\n", err)
			return ExitRuntime
		}
		fmt.Fprintln(e.stdout, filepath.Join(*dir, name))
	}
	return ExitOK
}

// roff escapes s for a text line: backslashes, dashes of options, and a
// leading dot or quote that roff would read as a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// manDate is the page's date: SOURCE_DATE_EPOCH's when set (reproducible
// packages), else today.
func manDate() string {
	t := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			t = time.Unix(sec, 0).UTC()
		}
	}
	return t.Format("2006-01-02")
}

func manPage(w io.Writer, t []*node) {
	fmt.Fprintf(w, ".TH MOAT 1 %q \"moat %s\" \"moat manual\"\n", manDate(), Version())
	fmt.Fprint(w, ".SH NAME\nmoat \\- put a Linux VPS behind layered defences and prove they hold\n")
	fmt.Fprint(w, ".SH SYNOPSIS\n.B moat\n.I COMMAND\n[\\fIflags\\fR]\n.br\n.B moat help\n.I COMMAND\n.br\n.B moat \\-v\n")
	fmt.Fprint(w, `.SH DESCRIPTION
moat is one static binary that audits a host, hardens sshd and the kernel,
renders an nftables firewall (table inet moat), bans abusive sources from
logs (the guard), runs an edge gateway, and sends alerts.
.B moat plan
shows every change as a diff;
.B moat apply
applies it as one transaction that is rolled back unless
.B moat confirm
comes from a new SSH connection in time.
.PP
Every command takes
.BR \-h / \-\-help ,
and
.B moat help
.I COMMAND
prints the same text as this page.
.SH COMMANDS
`)
	walk(t, func(n *node) {
		fmt.Fprintf(w, ".SS %s\n", roff("moat "+n.Synopsis))
		if n.Summary != "" && n.Summary != n.Synopsis {
			fmt.Fprintf(w, "%s\n", roff(n.Summary))
		}
		for _, d := range n.Flags {
			fmt.Fprint(w, ".TP\n")
			var names []string
			for _, s := range d.Spelled() {
				names = append(names, `\fB`+roff(s)+`\fR`)
			}
			line := strings.Join(names, ", ")
			if d.Arg != "" {
				line += ` \fI` + roff(d.Arg) + `\fR`
			}
			fmt.Fprintln(w, line)
			text := d.Usage
			if d.Def != "" {
				text += " (default " + d.Def + ")"
			}
			fmt.Fprintln(w, roff(text))
		}
	})
	fmt.Fprint(w, `.SH EXIT STATUS
.TP
0
ok
.TP
1
runtime error
.TP
2
usage or config error (nothing was applied)
.TP
3
audit findings at or above \-\-fail\-on
.TP
4
a change failed and was rolled back
.SH ENVIRONMENT
.TP
MOAT_CONFIG
the config file when \-c is not given
.TP
NO_COLOR
no colour in any output
.SH FILES
.TP
/etc/moat/moat.yaml
the config file, see
.BR moat.yaml (5)
.TP
/etc/moat/moat.nft
table inet moat as loaded at boot by moat\-firewall.service
.TP
/var/lib/moat/
the state: moat.db (bans, history, log positions) and changes/ (snapshots for rollback)
.TP
/run/moat/moat.sock
the daemon's control socket (root only)
.TP
/var/log/moat/
the gateway's access log
.SH SEE ALSO
.BR moat.yaml (5),
.BR nft (8),
.BR sshd_config (5),
.BR systemd.service (5)
`)
}

func configPage(w io.Writer, example []byte) {
	fmt.Fprintf(w, ".TH MOAT.YAML 5 %q \"moat %s\" \"moat manual\"\n", manDate(), Version())
	fmt.Fprint(w, `.SH NAME
moat.yaml \- the configuration of moat
.SH DESCRIPTION
moat reads one YAML file,
.IR /etc/moat/moat.yaml
(\fB\-c\fR \fIFILE\fR or \fB$MOAT_CONFIG\fR override it).
Every section is optional and its defaults are safe; unknown keys are errors
named with file:line:col.
.B moat config check
validates a file,
.B moat init
writes a starter one from what it finds on the host.
.PP
The annotated example below shows every key with a comment; it is installed as
.IR /usr/share/doc/moat/examples/moat.yaml .
.SH EXAMPLE
.nf
`)
	for _, line := range strings.Split(strings.TrimRight(string(example), "\n"), "\n") {
		fmt.Fprintln(w, roff(line))
	}
	fmt.Fprint(w, `.fi
.SH SEE ALSO
.BR moat (1)
`)
}
