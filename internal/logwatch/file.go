package logwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// DefaultPoll is how often a File source looks at its file without being
// woken by inotify: the safety net for missed events, and the only
// mechanism where inotify is unavailable or the directory does not exist
// yet.
const DefaultPoll = time.Second

// FileConfig configures a File source.
type FileConfig struct {
	// Path is the file to follow. It need not exist yet.
	Path string
	// Name is Line.Source and the Store key; Path when empty.
	Name string
	// Store keeps the position between runs; nil keeps none.
	Store Store
	// Start applies when the Store has no position for Name.
	Start StartPolicy
	// MaxLine bounds a line's text; DefaultMaxLine when 0.
	MaxLine int
	// SaveInterval is the least time between Saves; DefaultSaveInterval
	// when 0.
	SaveInterval time.Duration
	// Poll is the fallback polling interval; DefaultPoll when 0.
	Poll time.Duration
	// Log receives warnings (a rotated file that could not be found, a
	// lost tail); nil discards them.
	Log *slog.Logger
}

// File follows a log file through rotation.
//
// Rotation by rename+create: the old file stays open and is read to its
// end before the source moves to the new file, and it moves only once the
// new file has data (a single writer has then finished with the old one),
// so no line is lost or repeated. New files are opened as soon as inotify
// reports them, so a file rotated away again before the reader reaches it
// is still read.
//
// Rotation by copytruncate is racy by nature: lines written between
// logrotate's copy and its truncate are in neither file. The source
// notices the truncation (size below its offset, or the file's first bytes
// changed), finds the copy among the file's siblings by those first bytes
// (auth.log.1, auth.log-20240101…), reads the copy from its offset to the
// end, then the truncated file from its start. So every line present in
// the copy or the live file is delivered once, in order; only lines that
// logrotate itself dropped are missing. Without a copy (compressed at
// once, or removed) the lines after the offset are lost and a warning is
// logged.
//
// A restart resumes at the stored position when the file there is the
// same (device, inode and first bytes); when it was rotated in between,
// the rest of the old file is read from its sibling first.
type File struct {
	cfg   FileConfig
	stats fileCounters
}

type fileCounters struct {
	lines, bytes, long, rotations, truncations, recovered atomic.Uint64
}

// FileStats counts what a File source did.
type FileStats struct {
	Lines, Bytes uint64
	// Long counts lines cut at MaxLine.
	Long uint64
	// Rotations counts files finished for a successor (rename+create).
	Rotations uint64
	// Truncations counts truncations seen (copytruncate).
	Truncations uint64
	// Recovered counts rotated files or copies found and read to the end
	// after a truncation or a restart.
	Recovered uint64
}

// NewFile returns a File source for cfg.
func NewFile(cfg FileConfig) (*File, error) {
	if cfg.Path == "" {
		return nil, errors.New("file source: empty path")
	}
	cfg.Path = filepath.Clean(cfg.Path)
	if cfg.Name == "" {
		cfg.Name = cfg.Path
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &File{cfg: cfg}, nil
}

// Stats returns the counters so far.
func (s *File) Stats() FileStats {
	c := &s.stats
	return FileStats{
		Lines: c.lines.Load(), Bytes: c.bytes.Load(), Long: c.long.Load(),
		Rotations: c.rotations.Load(), Truncations: c.truncations.Load(), Recovered: c.recovered.Load(),
	}
}

// Run follows the file until ctx is cancelled. Only one Run may be active
// on a File at a time.
func (s *File) Run(ctx context.Context, h Handler) (err error) {
	r := newFollow(s, h)
	defer func() {
		if ferr := r.close(); err == nil {
			err = ferr
		}
	}()
	if err := r.resume(); err != nil {
		return err
	}
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		var wake <-chan struct{}
		if r.w == nil || r.w.gone.Load() {
			r.rewatch()
		}
		if r.w != nil {
			wake = r.w.wake
		}
		r.observe()
		if len(r.queue) > 0 && !r.queue[0].final {
			g := r.queue[0]
			trunc, err := r.check(g)
			if err != nil {
				return err
			}
			if trunc {
				r.truncated(g)
			}
		}
		if err := r.drain(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		}
	}
}

// segment is one open file in the order it is to be read.
type segment struct {
	f        *os.File
	dev, ino uint64
	off      int64 // next byte to read
	headLen  int
	headSum  uint32
	// final: read to the end, then move on (a rotated file or a copy).
	final bool
	// sealed: a successor has data; after one more read to the end, move on.
	sealed bool
}

func (g *segment) pos(off int64) Position {
	return Position{Dev: g.dev, Ino: g.ino, Offset: off, HeadLen: g.headLen, HeadSum: g.headSum}
}

// follow is the state of one Run.
type follow struct {
	s       *File
	h       Handler
	com     *committer
	log     *slog.Logger
	w       *watcher
	queue   []*segment
	maxLine int
	lines   lineBuf
}

func newFollow(s *File, h Handler) *follow {
	return &follow{
		s: s, h: h, log: s.cfg.Log, maxLine: s.cfg.MaxLine,
		com:   newCommitter(s.cfg.Store, s.cfg.Name, s.cfg.SaveInterval),
		lines: newLineBuf(s.cfg.Name, s.cfg.MaxLine),
	}
}

func (r *follow) close() error {
	if r.w != nil {
		r.w.close()
	}
	for _, g := range r.queue {
		g.f.Close()
	}
	r.queue = nil
	return r.com.flush()
}

func (r *follow) rewatch() {
	if r.w != nil {
		r.w.close()
		r.w = nil
	}
	if w, err := watch(r.s.cfg.Path); err == nil {
		r.w = w
	}
	// Without a watch (no directory yet, or no inotify) the poll ticker
	// keeps things moving.
}

// resume sets up the queue from the stored position, or from the start
// policy when there is none.
func (r *follow) resume() error {
	path := r.s.cfg.Path
	var pos Position
	var ok bool
	if st := r.s.cfg.Store; st != nil {
		var err error
		if pos, ok, err = st.Load(r.s.cfg.Name); err != nil {
			return fmt.Errorf("load position of %s: %w", r.s.cfg.Name, err)
		}
	}
	fi, statErr := os.Stat(path)
	if ok && pos.Cursor == "" && !pos.IsZero() {
		if statErr == nil {
			if dev, ino := fileID(fi); dev == pos.Dev && ino == pos.Ino {
				// Same inode: check() verifies the first bytes and size
				// before anything is read, and handles a truncation.
				return r.openSegment(path, func(g *segment) {
					g.off, g.headLen, g.headSum = pos.Offset, pos.HeadLen, pos.HeadSum
				})
			}
		}
		// Rotated while we were away: finish the old file if it is still
		// next to the new one. The file now at path is new and is read
		// from its start by observe.
		if pred := r.findSibling(pos.HeadLen, pos.HeadSum, func(dev, ino uint64, size int64) bool {
			return dev == pos.Dev && ino == pos.Ino && size >= pos.Offset
		}); pred != nil {
			pred.off, pred.final = pos.Offset, true
			r.queue = append(r.queue, pred)
			r.s.stats.recovered.Add(1)
		} else {
			r.log.Warn("rotated file not found: lines after the saved position are lost",
				"source", r.s.cfg.Name, "position", pos.String())
		}
		return nil
	}
	if statErr != nil {
		if !errors.Is(statErr, fs.ErrNotExist) {
			r.log.Warn("cannot stat log file", "path", path, "err", statErr)
		}
		return nil // observe picks the file up when it appears, from its start
	}
	return r.openSegment(path, func(g *segment) {
		if r.s.cfg.Start == StartAtEnd {
			g.off = lastLineEnd(g.f)
		}
	})
}

func (r *follow) openSegment(path string, init func(*segment)) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open %s: %w", path, hintPerm(err))
	}
	g, err := newSegment(f)
	if err != nil {
		f.Close()
		return err
	}
	init(g)
	r.queue = append(r.queue, g)
	return nil
}

func newSegment(f *os.File) (*segment, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	dev, ino := fileID(fi)
	return &segment{f: f, dev: dev, ino: ino}, nil
}

func (r *follow) queued(dev, ino uint64) bool {
	for _, g := range r.queue {
		if g.dev == dev && g.ino == ino {
			return true
		}
	}
	return false
}

func (r *follow) enqueue(f *os.File) {
	g, err := newSegment(f)
	if err != nil || r.queued(g.dev, g.ino) || len(r.queue) >= maxOpened {
		if err == nil && !r.queued(g.dev, g.ino) {
			r.log.Warn("too many rotated files pending; skipping one", "path", r.s.cfg.Path)
		}
		f.Close()
		return
	}
	r.queue = append(r.queue, g)
}

// observe queues the files the watcher opened and whatever is at path now.
func (r *follow) observe() {
	if r.w != nil {
	loop:
		for {
			select {
			case f := <-r.w.opened:
				r.enqueue(f)
			default:
				break loop
			}
		}
	}
	fi, err := os.Stat(r.s.cfg.Path)
	if err != nil {
		return
	}
	if dev, ino := fileID(fi); r.queued(dev, ino) {
		return
	}
	if f, err := os.Open(r.s.cfg.Path); err == nil {
		r.enqueue(f)
	}
}

// check reports whether g was truncated (copytruncate): its size fell
// below the offset, or its first bytes changed. Otherwise it extends g's
// fingerprint as the file grows.
func (r *follow) check(g *segment) (bool, error) {
	fi, err := g.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", r.s.cfg.Path, err)
	}
	var head [headMax]byte
	n, _ := g.f.ReadAt(head[:min(fi.Size(), headMax)], 0)
	if fi.Size() < g.off || (g.headLen > 0 && (n < g.headLen || headSum(head[:g.headLen]) != g.headSum)) {
		return true, nil
	}
	if n > g.headLen {
		g.headLen, g.headSum = n, headSum(head[:n])
	}
	return false, nil
}

// truncated handles g having been truncated: read the rest of the old
// content from its copy if there is one, then g from the start.
func (r *follow) truncated(g *segment) {
	r.s.stats.truncations.Add(1)
	var cp *segment
	if g.headLen > 0 {
		cp = r.findSibling(g.headLen, g.headSum, func(dev, ino uint64, size int64) bool {
			return !(dev == g.dev && ino == g.ino) && size >= g.off && !r.queued(dev, ino)
		})
	}
	if cp != nil {
		// The copy continues the byte stream read so far, including a
		// partial line held in the buffer.
		cp.off, cp.final = g.off, true
		r.queue = append([]*segment{cp}, r.queue...)
		r.s.stats.recovered.Add(1)
	} else {
		if g.off > 0 {
			r.log.Warn("log truncated and no copy found: lines after the last position may be lost",
				"path", r.s.cfg.Path, "offset", g.off)
		}
		r.lines.reset()
	}
	g.off, g.headLen, g.headSum, g.sealed = 0, 0, 0, false
}

// drain reads the queue until the current file is at its end and has no
// successor with data.
func (r *follow) drain(ctx context.Context) error {
	for len(r.queue) > 0 {
		if ctx.Err() != nil {
			return nil
		}
		g := r.queue[0]
		r.lines.compact()
		mark, off := r.lines.mark(), g.off
		n, err := r.lines.read(g)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.s.cfg.Path, err)
		}
		if n > 0 && !g.final {
			// Checked after the read and before delivery: if the file
			// was truncated meanwhile, what was read may be the new
			// content at the old offset. Forget it; the old content is
			// read again from the copy.
			trunc, err := r.check(g)
			if err != nil {
				return err
			}
			if trunc {
				r.lines.rollback(mark)
				g.off = off
				r.truncated(g)
				continue
			}
		}
		r.s.stats.bytes.Add(uint64(n))
		if err := r.deliver(); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if !g.sealed {
			if !g.final && !r.successorHasData() {
				return nil
			}
			// One more pass to the end: the writer may have appended
			// between our last read and its first write to the successor.
			g.sealed = true
			continue
		}
		if err := r.finish(g); err != nil {
			return err
		}
	}
	return nil
}

func (r *follow) successorHasData() bool {
	for _, g := range r.queue[1:] {
		if fi, err := g.f.Stat(); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// finish delivers g's last partial line, closes g and moves to the next.
func (r *follow) finish(g *segment) error {
	r.lines.flush(g)
	if err := r.deliver(); err != nil {
		return err
	}
	g.f.Close()
	r.queue = r.queue[1:]
	if !g.final {
		r.s.stats.rotations.Add(1)
	}
	if len(r.queue) > 0 {
		next := r.queue[0]
		return r.com.ack(next.pos(next.off))
	}
	return nil
}

func (r *follow) deliver() error {
	b := r.lines.batch
	if len(b) == 0 {
		return nil
	}
	if err := r.h(b); err != nil {
		return err
	}
	r.s.stats.lines.Add(uint64(len(b)))
	if r.lines.long > 0 {
		r.s.stats.long.Add(uint64(r.lines.long))
	}
	last := b[len(b)-1].Pos
	r.lines.clearBatch()
	return r.com.ack(last)
}

// findSibling opens the file next to path (same name prefix) whose
// identity satisfies match and whose first headLen bytes sum to sum; the
// most recently modified if several do.
func (r *follow) findSibling(headLen int, sum uint32, match func(dev, ino uint64, size int64) bool) *segment {
	if headLen <= 0 {
		return nil
	}
	dir, base := filepath.Split(r.s.cfg.Path)
	ents, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return nil
	}
	var best *segment
	var bestTime time.Time
	for _, e := range ents {
		name := e.Name()
		if name == base || len(name) <= len(base) || name[:len(base)] != base || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if dev, ino := fileID(fi); !match(dev, ino, fi.Size()) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		head := make([]byte, headLen)
		if n, _ := f.ReadAt(head, 0); n != headLen || headSum(head) != sum {
			f.Close()
			continue
		}
		g, err := newSegment(f)
		if err != nil || (best != nil && !fi.ModTime().After(bestTime)) {
			f.Close()
			continue
		}
		if best != nil {
			best.f.Close()
		}
		g.headLen, g.headSum = headLen, sum
		best, bestTime = g, fi.ModTime()
	}
	return best
}

func hintPerm(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (run as root or add the user to group adm)", err)
	}
	return err
}
