package term

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress shows that something slow is under way (apt installing,
// a swap file being written, bans restored at start). Nothing is shown
// for the first Threshold (quick steps stay quiet); then on a terminal
// one line rewritten in place every second with the elapsed time and the
// latest detail, elsewhere (a log, a pipe, journald) one plain line when
// it starts and one when it ends, so logs stay readable.
type Progress struct {
	w     io.Writer
	tty   bool
	label string
	start time.Time
	now   func() time.Time

	mu     sync.Mutex
	detail string
	shown  bool // the start was shown (the threshold passed)
	width  int  // of the last rewritten line, to blank it
	done   bool
	stop   chan struct{}
}

// Threshold is how long a step runs before its progress is shown.
const Threshold = time.Second

// Start begins a progress line for label on w, ticking every second until
// Done.
func Start(w io.Writer, label string) *Progress {
	p := newProgress(w, label, IsTerminal(w), time.Now)
	go p.loop()
	return p
}

func newProgress(w io.Writer, label string, tty bool, now func() time.Time) *Progress {
	return &Progress{w: w, tty: tty, label: label, start: now(), now: now, stop: make(chan struct{})}
}

func (p *Progress) loop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.tick()
		}
	}
}

// Update sets the detail shown after the label (the package being
// unpacked, bans restored so far).
func (p *Progress) Update(detail string) {
	p.mu.Lock()
	p.detail = detail
	p.mu.Unlock()
}

// tick redraws: called every second.
func (p *Progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	el := p.now().Sub(p.start)
	if el < Threshold {
		return
	}
	if !p.tty {
		if !p.shown {
			fmt.Fprintf(p.w, "%s…\n", p.label)
		}
		p.shown = true
		return
	}
	p.shown = true
	line := fmt.Sprintf("%s… %s", p.label, el.Round(time.Second))
	if p.detail != "" {
		line += "  " + p.detail
	}
	p.rewrite(line)
}

func (p *Progress) rewrite(line string) {
	pad := ""
	if n := p.width - len([]rune(line)); n > 0 {
		pad = fmt.Sprintf("%*s", n, "")
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.width = len([]rune(line))
}

// Done ends the progress with result ("done", "3 packages", an error). A
// step that finished before the threshold prints nothing.
func (p *Progress) Done(result string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	close(p.stop)
	if !p.shown {
		return
	}
	line := fmt.Sprintf("%s: %s in %s", p.label, result, p.now().Sub(p.start).Round(100*time.Millisecond))
	if p.tty {
		p.rewrite(line)
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintln(p.w, line)
}

type outKey struct{}

// WithOutput returns ctx carrying w as the stream for progress lines, so
// a slow step deep in a layer (apt-get install, writing a swap file) can
// show progress without its callers passing a writer down.
func WithOutput(ctx context.Context, w io.Writer) context.Context {
	return context.WithValue(ctx, outKey{}, w)
}

// Begin starts a progress line on ctx's output (WithOutput); with none it
// returns a Progress that shows nothing.
func Begin(ctx context.Context, label string) *Progress {
	w, _ := ctx.Value(outKey{}).(io.Writer)
	if w == nil {
		return &Progress{done: true} // Update and Done do nothing
	}
	return Start(w, label)
}
