package logwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
// is still read (up to 8 files ahead); one that was at the path too
// briefly to be seen there at all is found among the rotated files by its
// modification time when the source moves on.
//
// Rotation by copytruncate is racy by nature: lines written between
// logrotate's copy and its truncate are in neither file. The source
// notices the truncation (size below its offset, or the file's first bytes
// changed, checked after every read and before delivery), finds the copy
// among the rotated files by those first bytes, reads the copy from its
// offset to the end, then the truncated file from its start. So every
// line present in the copy or the live file is delivered once, in order;
// only lines that logrotate itself dropped are missing. This holds while
// truncations are further apart than the reader's lag (in practice: hours
// apart against milliseconds). Without a copy (compressed at once, or
// removed) the lines after the offset are lost and a warning is logged.
//
// Rotated files are the file's name followed by "." or "-" and digits
// (auth.log.1, auth.log-20240101); compressed ones cannot be read.
//
// A restart resumes at the stored position when the file there is the
// same (device, inode and first bytes). When it was rotated while the
// source was stopped, the rest of the old file is read first (found by
// inode, or by its first bytes if it was copied), then the rotated files
// written after it, oldest first, then the file at the path. If the old
// file is gone (deleted or compressed), the lines after the position in
// it are lost, and a warning is logged.
//
// The first start without a stored position follows Start; the start
// point is saved at once, so a rotation before the first line is read
// does not lose the file.
type File struct {
	cfg   FileConfig
	stats fileCounters
	// noWatch makes the source poll only, as where inotify is
	// unavailable (tests).
	noWatch bool
	// resumed, if set, is called once Run has chosen where to start
	// (tests: lines appended after it are read).
	resumed func()
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
	if s.resumed != nil {
		s.resumed()
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
		if err := r.checkQueued(); err != nil {
			return err
		}
		if len(r.queue) > 0 {
			g := r.queue[0]
			if !r.anchored {
				// Record where reading starts, so that a restart
				// before the first line finds this file again even
				// if it was rotated meanwhile.
				r.anchored = true
				if err := r.com.ack(g.pos(g.off)); err != nil {
					return err
				}
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
	mtime    time.Time // its mtime when opened
	off      int64     // next byte to read
	headLen  int
	headSum  uint32
	head     [headMax]byte // the first headLen bytes, as last fingerprinted
	// emptySince is the file's mtime when it was fingerprinted empty: an
	// empty fingerprint cannot tell a truncation, so copies made after it
	// are looked for once the file has data.
	emptySince time.Time
	// final: a rotated file or a copy, not the file at path: it is not
	// checked for truncation.
	final bool
	// sealed: a successor has data; after one more read to the end, move on.
	sealed bool
}

func (g *segment) pos(off int64) Position {
	return Position{Dev: g.dev, Ino: g.ino, Offset: off, HeadLen: g.headLen, HeadSum: g.headSum}
}

// follow is the state of one Run.
type follow struct {
	s     *File
	h     Handler
	com   *committer
	log   *slog.Logger
	w     *watcher
	queue []*segment
	lines lineBuf
	// anchored: a position is stored, or was recorded by this run.
	anchored bool
	// done are the files finished by this run, the latest maxDone.
	done [][2]uint64
	// warnedPerm: an unreadable file at path was reported once.
	warnedPerm bool
}

func newFollow(s *File, h Handler) *follow {
	return &follow{
		s: s, h: h, log: s.cfg.Log,
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
	if r.s.noWatch {
		return
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
		r.anchored = true
		if statErr == nil {
			if dev, ino := fileID(fi); dev == pos.Dev && ino == pos.Ino {
				r.log.Debug("resuming", "source", r.s.cfg.Name, "position", pos.String())
				// Same inode: check() verifies the first bytes and size
				// before anything is read, and handles a truncation.
				return r.queuePath(path, func(g *segment) {
					g.off, g.headLen, g.headSum = pos.Offset, pos.HeadLen, pos.HeadSum
				})
			}
		}
		// Rotated while we were away: finish the old file if it is still
		// next to the new one. The file now at path is new and is read
		// from its start by observe.
		pred := r.findSibling(pos.HeadLen, pos.HeadSum, func(dev, ino uint64, size int64) bool {
			return dev == pos.Dev && ino == pos.Ino && size >= pos.Offset
		})
		if pred == nil && pos.HeadLen > 0 {
			// The old file may have been truncated after its copy was
			// taken (copytruncate, then rotated further): the copy has
			// its first bytes.
			pred = r.findSibling(pos.HeadLen, pos.HeadSum, func(dev, ino uint64, size int64) bool {
				return size >= pos.Offset && !r.isPath(dev, ino)
			})
		}
		if pred != nil {
			pred.off = pos.Offset
			r.log.Debug("resuming in rotated file", "source", r.s.cfg.Name, "file", pred.f.Name(), "position", pos.String())
			// The file at path is new: queued now, from its start,
			// and fingerprinted before the rotated files are chosen.
			if err := r.queuePath(path, func(*segment) {}); err != nil {
				return err
			}
			var live *segment
			if len(r.queue) > 0 {
				live = r.queue[0]
			}
			r.recover(pred, live, 0)
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
	return r.queuePath(path, func(g *segment) {
		if r.s.cfg.Start == StartAtEnd {
			g.off = lastLineEnd(g.f)
		}
	})
}

// queuePath queues the file at path, set up by init; a missing file is
// not an error.
func (r *follow) queuePath(path string, init func(*segment)) error {
	g, err := openSegment(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open %s: %w", path, hintPerm(err))
	}
	init(g)
	r.queue = append(r.queue, g)
	return nil
}

// openSegment opens path as a segment, fingerprinted now.
func openSegment(path string) (*segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	g, err := newSegment(f)
	if err != nil {
		f.Close()
	}
	return g, err
}

func newSegment(f *os.File) (*segment, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	dev, ino := fileID(fi)
	g := &segment{f: f, dev: dev, ino: ino, mtime: fi.ModTime()}
	// Fingerprinted at once, so that every position taken in it can
	// find it again.
	g.refreshHead()
	return g, nil
}

// refreshHead fingerprints g's first bytes as they are now.
func (g *segment) refreshHead() {
	n, _ := g.f.ReadAt(g.head[:], 0)
	g.headLen, g.headSum = n, headSum(g.head[:n])
	g.emptySince = time.Time{}
	if n == 0 {
		if fi, err := g.f.Stat(); err == nil {
			g.emptySince = fi.ModTime()
		}
	}
}

// headSumOf is the fingerprint of g's first n bytes, n <= g.headLen.
func (g *segment) headSumOf(n int) uint32 { return headSum(g.head[:n]) }

func (r *follow) queued(dev, ino uint64) bool {
	for _, g := range r.queue {
		if g.dev == dev && g.ino == ino {
			return true
		}
	}
	return false
}

func (r *follow) enqueue(g *segment) {
	if r.seen(g.dev, g.ino) || len(r.queue) >= maxOpened {
		if !r.seen(g.dev, g.ino) {
			r.log.Warn("too many rotated files pending; skipping one", "path", r.s.cfg.Path)
		}
		g.f.Close()
		return
	}
	r.log.Debug("queued file", "source", r.s.cfg.Name, "ino", g.ino)
	r.queue = append(r.queue, g)
}

// observe queues the files the watcher opened and whatever is at path now,
// in the order they were at path.
func (r *follow) observe() {
	if r.w != nil {
		r.w.mu.Lock()
		defer r.w.mu.Unlock()
		for _, g := range r.w.opened {
			r.enqueue(g)
		}
		r.w.opened = r.w.opened[:0]
	}
	fi, err := os.Stat(r.s.cfg.Path)
	if err != nil {
		return
	}
	if dev, ino := fileID(fi); r.seen(dev, ino) {
		return
	}
	g, err := openSegment(r.s.cfg.Path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) && !r.warnedPerm {
			r.warnedPerm = true
			r.log.Warn("cannot read log file", "path", r.s.cfg.Path, "err", hintPerm(err))
		}
		return
	}
	r.enqueue(g)
}

// checkResult is what check found.
type checkResult int

const (
	unchanged checkResult = iota
	// truncatedNow: the size fell below the offset, or the first bytes
	// changed (copytruncate).
	truncatedNow
	// copiedWhileEmpty: copies of g made since it was seen empty were
	// queued before it.
	copiedWhileEmpty
)

// check looks for a truncation of g and keeps its fingerprint current as
// the file grows.
func (r *follow) check(g *segment) (checkResult, error) {
	fi, err := g.f.Stat()
	if err != nil {
		return unchanged, fmt.Errorf("stat %s: %w", r.s.cfg.Path, err)
	}
	var head [headMax]byte
	n, _ := g.f.ReadAt(head[:min(fi.Size(), headMax)], 0)
	if fi.Size() < g.off || (g.headLen > 0 && (n < g.headLen || headSum(head[:g.headLen]) != g.headSum)) {
		return truncatedNow, nil
	}
	if n <= g.headLen {
		return unchanged, nil
	}
	copy(g.head[:], head[:n])
	g.headLen, g.headSum = n, headSum(head[:n])
	if g.emptySince.IsZero() {
		return unchanged, nil
	}
	since := g.emptySince
	g.emptySince = time.Time{}
	gap := r.rotatedAfter(g, since, g)
	if len(gap) == 0 {
		return unchanged, nil
	}
	r.log.Debug("copied while empty", "source", r.s.cfg.Name, "files", len(gap))
	r.queue = slices.Insert(r.queue, slices.Index(r.queue, g), gap...)
	r.s.stats.recovered.Add(uint64(len(gap)))
	return copiedWhileEmpty, nil
}

// checkQueued checks every queued file at path (or rotated from it by
// rename) for truncation, and keeps their fingerprints current, so that a
// file waiting behind another is not copytruncated unnoticed.
func (r *follow) checkQueued() error {
	for i := 0; i < len(r.queue); i++ {
		g := r.queue[i]
		if g.final {
			continue
		}
		res, err := r.check(g)
		if err != nil {
			return err
		}
		switch res {
		case truncatedNow:
			i += r.truncated(g)
		case copiedWhileEmpty:
			i = slices.Index(r.queue, g)
		}
	}
	return nil
}

// truncated handles g having been truncated: read the rest of the old
// content from its copy if there is one, then g from the start. It
// returns how many files it queued before g.
func (r *follow) truncated(g *segment) int {
	r.s.stats.truncations.Add(1)
	var cp *segment
	if g.headLen > 0 {
		cp = r.findSibling(g.headLen, g.headSum, func(dev, ino uint64, size int64) bool {
			return !(dev == g.dev && ino == g.ino) && size >= g.off && !r.seen(dev, ino)
		})
	}
	off := g.off
	g.off, g.sealed = 0, false
	g.refreshHead()
	at := slices.Index(r.queue, g)
	if cp != nil {
		// The copy continues the byte stream read so far, including a
		// partial line held in the buffer.
		cp.off = off
		r.log.Debug("truncated; reading the rest from the copy", "source", r.s.cfg.Name, "copy", cp.f.Name(), "offset", cp.off)
		return r.recover(cp, g, at)
	}
	if off > 0 {
		r.log.Warn("log truncated and no copy found: lines after the last position may be lost",
			"path", r.s.cfg.Path, "offset", off)
	}
	if at == 0 {
		r.lines.reset()
	}
	return 0
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
			res, err := r.check(g)
			if err != nil {
				return err
			}
			if res != unchanged {
				// Read again once the copies queued before g are done.
				r.lines.rollback(mark)
				g.off = off
				if res == truncatedNow {
					r.truncated(g)
				}
				continue
			}
			r.lines.setHead(mark, g)
		}
		if n > 0 && len(r.queue) > 1 {
			if err := r.checkQueued(); err != nil {
				return err
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
			if !r.successorHasData() {
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
	r.log.Debug("finished file", "source", r.s.cfg.Name, "file", g.f.Name(), "ino", g.ino, "offset", g.off)
	r.markDone(g)
	r.queue = r.queue[1:]
	if !g.final {
		r.s.stats.rotations.Add(1)
		// Files that were at path only briefly, rotated away before
		// they were seen there, come between g and its successor.
		if fi, err := g.f.Stat(); err == nil {
			var live *segment
			if i := slices.IndexFunc(r.queue, func(q *segment) bool { return !q.final }); i >= 0 {
				live = r.queue[i]
			}
			if gap := r.rotatedAfter(g, fi.ModTime(), live); len(gap) > 0 {
				r.queue = slices.Insert(r.queue, 0, gap...)
				r.s.stats.recovered.Add(uint64(len(gap)))
			}
		}
	}
	g.f.Close()
	if len(r.queue) > 0 {
		// Saving the start of the next file makes a restart begin there
		// rather than look for this one; fingerprinted first, so that a
		// copytruncate of it while stopped is recognised.
		if err := r.checkQueued(); err != nil {
			return err
		}
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

// sibling is a rotated copy of the followed file in its directory.
type sibling struct {
	path     string
	fi       fs.FileInfo
	dev, ino uint64
}

// siblings lists the rotated copies of the file next to it: its name
// followed by "." or "-" and digits and separators (auth.log.1,
// auth.log-20240101); compressed ones cannot be read and are left out.
func (r *follow) siblings() []sibling {
	dir, base := filepath.Split(r.s.cfg.Path)
	// A rotation renaming the files while they are listed can hide one
	// of them: list again, a few times at most, until none vanished.
	var out []sibling
	for range 3 {
		ents, err := os.ReadDir(filepath.Clean(dir))
		if err != nil {
			return nil
		}
		out = out[:0]
		stable := true
		for _, e := range ents {
			if !e.Type().IsRegular() || !rotatedName(e.Name(), base) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				stable = false
				continue
			}
			dev, ino := fileID(fi)
			out = append(out, sibling{filepath.Join(dir, e.Name()), fi, dev, ino})
		}
		if stable {
			break
		}
	}
	return out
}

func rotatedName(name, base string) bool {
	suffix, ok := strings.CutPrefix(name, base)
	if !ok || len(suffix) < 2 || (suffix[0] != '.' && suffix[0] != '-') {
		return false
	}
	digits := false
	for _, c := range suffix[1:] {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == '-' || c == '_':
		default:
			return false
		}
	}
	return digits
}

// findSibling opens the rotated copy whose identity satisfies match and
// whose first headLen bytes sum to sum; the most recently modified if
// several do.
//
// headLen 0 (a position taken in an empty file) matches on identity only.
func (r *follow) findSibling(headLen int, sum uint32, match func(dev, ino uint64, size int64) bool) *segment {
	var best *segment
	for _, sb := range r.siblings() {
		if !match(sb.dev, sb.ino, sb.fi.Size()) || (best != nil && !sb.fi.ModTime().After(best.mtime)) {
			continue
		}
		f, err := os.Open(sb.path)
		if err != nil {
			continue
		}
		head := make([]byte, headLen)
		g, err := newSegment(f)
		if n, _ := f.ReadAt(head, 0); err != nil || n != headLen || headSum(head) != sum {
			f.Close()
			continue
		}
		if best != nil {
			best.f.Close()
		}
		best = g
	}
	return best
}

// recover queues g, a rotated file or copy to be read from its offset to
// its end, at index at of the queue, followed by the rotated files that
// came after it (see rotatedAfter). It returns how many files it queued.
func (r *follow) recover(g, live *segment, at int) int {
	g.final = true
	add := append([]*segment{g}, r.rotatedAfter(g, g.mtime, live)...)
	r.queue = slices.Insert(r.queue, max(at, 0), add...)
	r.s.stats.recovered.Add(uint64(len(add)))
	return len(add)
}

// rotatedAfter opens the rotated files, oldest first, modified after
// since and before live (the file at path) was last written, and not read
// yet: files rotated while the source was stopped, or while it was too
// slow to see them at path. A rotated file that starts like live
// (fingerprinted just now) is a copy of it whose truncation is still to
// come: it is left for the copy search that the truncation will trigger.
func (r *follow) rotatedAfter(g *segment, since time.Time, live *segment) []*segment {
	var until time.Time
	if live != nil {
		if fi, err := live.f.Stat(); err == nil {
			until = fi.ModTime()
		}
	}
	sibs := r.siblings()
	slices.SortFunc(sibs, func(a, b sibling) int { return a.fi.ModTime().Compare(b.fi.ModTime()) })
	var add []*segment
	for _, sb := range sibs {
		mt := sb.fi.ModTime()
		// An empty one may be a copy being made; it is nothing to read yet.
		if sb.fi.Size() == 0 || !mt.After(since) || (!until.IsZero() && mt.After(until)) ||
			r.seen(sb.dev, sb.ino) || (sb.dev == g.dev && sb.ino == g.ino) ||
			(live != nil && sb.dev == live.dev && sb.ino == live.ino) || len(r.queue)+len(add) >= maxOpened {
			continue
		}
		f, err := os.Open(sb.path)
		if err != nil {
			continue
		}
		ng, err := newSegment(f)
		if err != nil || (live != nil && ng.headLen > 0 && ng.headLen <= live.headLen && ng.headSum == live.headSumOf(ng.headLen)) {
			f.Close()
			continue
		}
		ng.final = true
		r.log.Debug("reading rotated file", "source", r.s.cfg.Name, "file", ng.f.Name())
		add = append(add, ng)
	}
	return add
}

// seen reports whether a file is queued or was finished by this run: a
// file is never read twice.
func (r *follow) seen(dev, ino uint64) bool {
	return r.queued(dev, ino) || slices.Contains(r.done, [2]uint64{dev, ino})
}

// maxDone bounds the finished files remembered.
const maxDone = 64

func (r *follow) markDone(g *segment) {
	if len(r.done) >= maxDone {
		r.done = r.done[1:]
	}
	r.done = append(r.done, [2]uint64{g.dev, g.ino})
}

// isPath reports whether dev/ino is the file now at the followed path.
func (r *follow) isPath(dev, ino uint64) bool {
	fi, err := os.Stat(r.s.cfg.Path)
	if err != nil {
		return false
	}
	d, i := fileID(fi)
	return d == dev && i == ino
}

func hintPerm(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (run as root or add the user to group adm)", err)
	}
	return err
}
