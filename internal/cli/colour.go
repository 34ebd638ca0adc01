package cli

import (
	"bytes"
	"io"
	"regexp"
	"strings"

	"github.com/moat-sh/moat/internal/term"
)

// Colour where it helps a person read: plan diffs (+ green, - red, @@
// cyan, the layer headers bold) and `moat status` (section names bold,
// what is wrong in red). Both are line filters over the plain text the
// commands already write, so the words never depend on colour and
// NO_COLOR, TERM=dumb or a pipe (term.Colour) give the same bytes as
// before.

// lineColour colours complete lines written through it.
type lineColour struct {
	w      io.Writer
	buf    []byte
	colour func(string) string
}

func (l *lineColour) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			// A progress line rewritten in place ("\r…") goes out as
			// it comes, uncoloured.
			if bytes.IndexByte(l.buf, '\r') >= 0 {
				_, err := l.w.Write(l.buf)
				l.buf = l.buf[:0]
				return len(p), err
			}
			return len(p), nil
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		if _, err := io.WriteString(l.w, l.colour(line)+"\n"); err != nil {
			return len(p), err
		}
	}
}

// Terminal tells term.IsTerminal that the filter writes to a terminal,
// so progress lines rewrite themselves through it.
func (l *lineColour) Terminal() bool { return term.IsTerminal(l.w) }

// Flush writes a last line without its newline.
func (l *lineColour) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := io.WriteString(l.w, l.colour(string(l.buf)))
	l.buf = nil
	return err
}

type flusher interface {
	io.Writer
	Flush() error
}

type plainWriter struct{ io.Writer }

func (plainWriter) Flush() error { return nil }

// Terminal: without colour (NO_COLOR) a terminal is still one, and
// progress lines still rewrite themselves in place.
func (p plainWriter) Terminal() bool { return term.IsTerminal(p.Writer) }

func colourWith(w io.Writer, pal term.Palette, f func(term.Palette, string) string) flusher {
	if !pal.On {
		return plainWriter{w}
	}
	return &lineColour{w: w, colour: func(s string) string { return f(pal, s) }}
}

// colourPlan wraps w for `moat plan` and `moat apply` output.
func colourPlan(w io.Writer) flusher { return colourWith(w, term.For(w), planLine) }

func planLine(p term.Palette, s string) string {
	t := strings.TrimLeft(s, " ")
	switch {
	case strings.HasPrefix(t, "== "):
		return p.Bold(s)
	case strings.HasPrefix(t, "+++"), strings.HasPrefix(t, "---"):
		return p.Bold(s)
	case strings.HasPrefix(t, "+"):
		return p.Green(s)
	case strings.HasPrefix(t, "-"):
		return p.Red(s)
	case strings.HasPrefix(t, "@@"):
		return p.Cyan(s)
	case strings.HasPrefix(t, "warning:"):
		return p.Yellow(s)
	}
	return s
}

// colourApply wraps w for what apply, confirm and rollback say as they go.
func colourApply(w io.Writer) flusher { return colourWith(w, term.For(w), applyLine) }

func applyLine(p term.Palette, s string) string {
	switch {
	case strings.HasPrefix(s, "Otherwise everything is rolled back"):
		return s // what will happen, not what went wrong
	case strings.Contains(s, "rolled back"), strings.Contains(s, ": FAIL"), strings.Contains(s, "failed"):
		return p.Red(s)
	case strings.HasPrefix(s, "change ") && (strings.HasSuffix(s, " confirmed") || strings.Contains(s, "applied and confirmed")):
		return p.Green(s)
	case strings.HasPrefix(s, "change ") && strings.Contains(s, "waiting for confirm"):
		return p.Yellow(s)
	case strings.HasPrefix(strings.TrimSpace(s), "sudo moat confirm"):
		return p.Bold(s)
	}
	return planLine(p, s)
}

// colourStatus wraps w for `moat status`.
func colourStatus(w io.Writer) flusher { return colourWith(w, term.For(w), statusLine) }

var (
	statusSection = regexp.MustCompile(`^([A-Z][A-Z ]+[A-Z])(  |$)`)
	statusBad     = regexp.MustCompile(`NOT LOADED|NOT ENFORCED|NOT persisted for boot|ROLLBACK INCOMPLETE|^daemon not running|^  critical: .*`)
)

func statusLine(p term.Palette, s string) string {
	s = statusBad.ReplaceAllStringFunc(s, p.Red)
	if m := statusSection.FindStringSubmatchIndex(s); m != nil {
		s = p.Bold(s[:m[3]]) + s[m[3]:]
	}
	return s
}
