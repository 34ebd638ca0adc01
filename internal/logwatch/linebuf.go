package logwatch

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// headMax is how many leading bytes fingerprint a file.
const headMax = 512

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func headSum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

// minBuf is the least read buffer: large reads keep syscalls far from
// the per-line cost.
const minBuf = 256 << 10

// lineBuf splits what is read from files into lines without allocating:
// the batch's Text slices point into buf, which is only compacted before
// the next read, after the handler returned.
type lineBuf struct {
	source  string
	maxLine int
	buf     []byte
	// buf[start:end] is the partial line not yet ended by a newline.
	start, end int
	// cut: the partial line passed maxLine; buf[start:start+maxLine]
	// keeps its beginning and the rest is dropped until its newline.
	cut   bool
	batch []Line
	long  int // lines cut in the current batch
}

func newLineBuf(source string, maxLine int) lineBuf {
	return lineBuf{source: source, maxLine: maxLine, buf: make([]byte, max(minBuf, 4*maxLine))}
}

// read reads once from g at its offset and appends the complete lines to
// the batch. It returns the number of bytes read; 0 means end of file.
func (b *lineBuf) read(g *segment) (int, error) {
	b.compact()
	n, err := g.f.ReadAt(b.buf[b.end:], g.off)
	if n == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return 0, nil
		}
		return 0, err
	}
	from, base := b.end, g.off
	g.off += int64(n)
	b.end += n
	for i := from; ; {
		j := bytes.IndexByte(b.buf[i:b.end], '\n')
		if j < 0 {
			break
		}
		nl := i + j
		b.emit(g, b.buf[b.start:nl], base+int64(nl-from)+1)
		b.start, b.cut = nl+1, false
		i = nl + 1
	}
	if b.end-b.start > b.maxLine {
		b.cut = true
		b.end = b.start + b.maxLine
	}
	return n, nil
}

// compact moves the partial line to the start of the buffer; only
// between batches, since the batch's Text points into the buffer.
func (b *lineBuf) compact() {
	if b.start > 0 {
		b.end = copy(b.buf, b.buf[b.start:b.end])
		b.start = 0
	}
}

// bufMark is the state of a compacted lineBuf before a read.
type bufMark struct {
	end, batch, long int
	cut              bool
}

func (b *lineBuf) mark() bufMark {
	return bufMark{end: b.end, batch: len(b.batch), long: b.long, cut: b.cut}
}

// rollback forgets what was read since mark.
func (b *lineBuf) rollback(m bufMark) {
	b.start, b.end, b.cut, b.long = 0, m.end, m.cut, m.long
	b.batch = b.batch[:m.batch]
}

// setHead gives the lines read since m g's fingerprint, which may have
// grown since they were read (only while the file is shorter than
// headMax).
func (b *lineBuf) setHead(m bufMark, g *segment) {
	for i := m.batch; i < len(b.batch); i++ {
		p := &b.batch[i].Pos
		if p.HeadLen == g.headLen {
			return
		}
		p.HeadLen, p.HeadSum = g.headLen, g.headSum
	}
}

func (b *lineBuf) emit(g *segment, text []byte, end int64) {
	cut := b.cut
	if len(text) > b.maxLine {
		text, cut = text[:b.maxLine], true
	}
	if cut {
		b.long++
	}
	b.batch = append(b.batch, Line{Source: b.source, Text: text, Truncated: cut, Pos: g.pos(end)})
}

// flush emits the partial line at the end of a file that will not grow
// any more.
func (b *lineBuf) flush(g *segment) {
	if b.end > b.start || b.cut {
		b.emit(g, b.buf[b.start:b.end], g.off)
	}
	b.reset()
}

// reset drops the partial line.
func (b *lineBuf) reset() { b.start, b.end, b.cut = 0, 0, false }

func (b *lineBuf) clearBatch() {
	b.batch = b.batch[:0]
	b.long = 0
}

// lastLineEnd returns the offset just past f's last newline, where
// StartAtEnd begins: a partial last line is read whole once it ends.
func lastLineEnd(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0
	}
	size := fi.Size()
	tail := make([]byte, min(size, 64<<10))
	n, _ := f.ReadAt(tail, size-int64(len(tail)))
	if i := bytes.LastIndexByte(tail[:n], '\n'); i >= 0 {
		return size - int64(len(tail)) + int64(i) + 1
	}
	if size <= int64(len(tail)) {
		return 0 // one unfinished line: take it when it ends
	}
	return size
}
