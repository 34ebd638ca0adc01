// Package term says what a command may do with its output stream: whether
// it is a terminal, whether colour is wanted there (NO_COLOR, TERM=dumb,
// not a terminal: no colour), and how to show progress on it (a rewriting
// line on a terminal, plain lines elsewhere). One helper for every command
// that colours: audit, status, plan, apply, the daemon's text logs.
package term

import (
	"io"
	"os"
)

// IsTerminal reports whether w is a character device (a terminal), or a
// filter over one that says so (Terminal() bool).
func IsTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ Terminal() bool }); ok {
		return t.Terminal()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Colour reports whether colour escapes may be written to w: a terminal
// that is not TERM=dumb, and NO_COLOR (https://no-color.org) unset or
// empty.
func Colour(w io.Writer) bool {
	return colourAllowed(os.Getenv) && IsTerminal(w)
}

func colourAllowed(getenv func(string) string) bool {
	return getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

// The escape sequences, for writers that compose their own lines (the
// audit report); others use a Palette.
const (
	SGRReset   = "\x1b[0m"
	SGRBold    = "\x1b[1m"
	SGRDim     = "\x1b[2m"
	SGRRed     = "\x1b[31m"
	SGRGreen   = "\x1b[32m"
	SGRYellow  = "\x1b[33m"
	SGRCyan    = "\x1b[36m"
	SGRBoldRed = "\x1b[1;31m"
)

// Palette colours text when On, and returns it unchanged otherwise, so
// callers write one code path.
type Palette struct{ On bool }

// For is the palette for w.
func For(w io.Writer) Palette { return Palette{On: Colour(w)} }

func (p Palette) wrap(code, s string) string {
	if !p.On || s == "" {
		return s
	}
	return code + s + SGRReset
}

// Bold, Dim, Red, Green, Yellow, Cyan and BoldRed colour s.
func (p Palette) Bold(s string) string    { return p.wrap(SGRBold, s) }
func (p Palette) Dim(s string) string     { return p.wrap(SGRDim, s) }
func (p Palette) Red(s string) string     { return p.wrap(SGRRed, s) }
func (p Palette) Green(s string) string   { return p.wrap(SGRGreen, s) }
func (p Palette) Yellow(s string) string  { return p.wrap(SGRYellow, s) }
func (p Palette) Cyan(s string) string    { return p.wrap(SGRCyan, s) }
func (p Palette) BoldRed(s string) string { return p.wrap(SGRBoldRed, s) }
