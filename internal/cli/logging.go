package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moat-sh/moat/internal/term"
)

// Logging. The daemons (moat run, moat gateway serve) log human text on a
// terminal and JSON elsewhere (journald, a file, a collector), or what
// --log-format says. Every other command writes its own human output on
// stdout: its logger writes text to stderr, warnings and errors only, so
// no JSON line ever lands in the middle of a plan or an apply.

// commandLogger is the logger of a command that is not a daemon.
func commandLogger(w io.Writer) *slog.Logger {
	return slog.New(newHumanHandler(w, slog.LevelWarn, false))
}

// newLogger is commandLogger under the name other files of the package
// (the command tree's) call it by.
func newLogger(w io.Writer) *slog.Logger { return commandLogger(w) }

// logFormatFlag adds --log-format to a daemon command.
func logFormatFlag(f *flags) *string {
	return f.String("log-format", "auto", "log `format`: text (for people), json (for collectors), or auto: text on a terminal, json otherwise")
}

// daemonLogger is the logger of a daemon command writing to w.
func daemonLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "auto", "":
		if isTerminal(w) {
			return slog.New(newHumanHandler(w, slog.LevelInfo, true)), nil
		}
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})), nil
	case "text":
		return slog.New(newHumanHandler(w, slog.LevelInfo, true)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})), nil
	}
	return nil, fmt.Errorf("--log-format %q: expected text, json or auto", format)
}

// humanHandler writes one line per record: "15:04:05 WARN message
// key=value …", the level coloured where the stream takes colour.
type humanHandler struct {
	mu     *sync.Mutex
	w      io.Writer
	level  slog.Leveler
	pal    term.Palette
	clock  bool   // the time of day first (daemons; commands need none)
	prefix string // group prefix for keys
	attrs  string // preformatted attributes from WithAttrs
}

func newHumanHandler(w io.Writer, level slog.Leveler, clock bool) *humanHandler {
	return &humanHandler{mu: &sync.Mutex{}, w: w, level: level, pal: term.For(w), clock: clock}
}

func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *humanHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.clock {
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		b.WriteString(h.pal.Dim(t.Format("15:04:05")) + " ")
	}
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString(h.pal.BoldRed("ERROR") + " ")
	case r.Level >= slog.LevelWarn:
		b.WriteString(h.pal.Yellow("WARN") + " ")
	case r.Level >= slog.LevelInfo:
		if h.clock {
			b.WriteString(h.pal.Cyan("INFO") + " ")
		}
	default:
		b.WriteString(h.pal.Dim("DEBUG") + " ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.pal, h.prefix, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func writeAttr(b *strings.Builder, pal term.Palette, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			writeAttr(b, pal, p, g)
		}
		return
	}
	v := a.Value.String()
	// Quoted when it has a space, a quote or anything unprintable: a value
	// from a log line (an attacker's) cannot forge a line or an escape.
	if v == "" || strings.ContainsAny(v, " \"=") || strings.IndexFunc(v, func(r rune) bool { return !strconv.IsPrint(r) }) >= 0 {
		v = strconv.Quote(v)
	}
	b.WriteString(" " + pal.Dim(prefix+a.Key+"=") + v)
}

func (h *humanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range as {
		writeAttr(&b, h.pal, h.prefix, a)
	}
	c := *h
	c.attrs += b.String()
	return &c
}

func (h *humanHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix += name + "."
	return &c
}
