package logwatch

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// FuzzParseEntry feeds journalctl JSON lines, whose values an attacker
// partly controls (MESSAGE, SYSLOG_IDENTIFIER of their own processes).
func FuzzParseEntry(f *testing.F) {
	f.Add([]byte(`{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1795240476900631","MESSAGE":"hello","_PID":"1"}`))
	f.Add([]byte(`{"__CURSOR":"c","MESSAGE":[99,97,102,195,169,32,27,91,51,49,109],"DUP":["one","two"],"BIG":null}`))
	f.Add([]byte(`{"__CURSOR":"a\u00e9\ud83d\ude00\t","MESSAGE":"x\"y\\z\/","K":null,"K":"v","MESSAGE":null,"L":"1","L":null}`))
	f.Add([]byte(`{"__CURSOR":"c","M":[1,2,300],"N":[007],"__REALTIME_TIMESTAMP":"+12"}`))
	f.Add([]byte(` { "__CURSOR" : [ "c" , [1] ] , "R" : [[1,2],"x",[3]] } `))
	f.Fuzz(func(t *testing.T, line []byte) {
		const max = 64
		// The fast scanner agrees with encoding/json wherever it answers.
		if fast, ok := scanEntry(line, max); ok {
			slow, err := parseEntryJSON(line, max)
			if err != nil {
				t.Fatalf("scanner accepted what encoding/json rejects: %v", err)
			}
			if fast.cursor != slow.cursor || !fast.realtime.Equal(slow.realtime) || !bytes.Equal(fast.message, slow.message) ||
				fast.cut != slow.cut || !mapsEqual(fast.fields, slow.fields) {
				t.Fatalf("scanner %+v\nencoding/json %+v", fast, slow)
			}
		}
		e, err := parseEntry(line, max)
		if err != nil {
			return
		}
		if e.cursor == "" || strings.ContainsAny(e.cursor, "\n\x00") {
			t.Fatalf("accepted cursor %q", e.cursor)
		}
		if len(e.message) > max || (e.cut && len(e.message) != max) {
			t.Fatalf("message of %d bytes, cut=%v", len(e.message), e.cut)
		}
		if len(e.fields) > maxFields {
			t.Fatalf("%d fields", len(e.fields))
		}
		for k, v := range e.fields {
			if len(v) > max || strings.HasPrefix(k, "__") || k == "MESSAGE" {
				t.Fatalf("field %q=%q", k, v)
			}
		}
	})
}

// FuzzJournalStream feeds whole journalctl output streams, long lines and
// garbage included, through the reader that batches them.
func FuzzJournalStream(f *testing.F) {
	f.Add([]byte("{\"__CURSOR\":\"a\",\"MESSAGE\":\"x\"}\n\n-- No entries --\n{\"__CURSOR\":\"b\"}"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		j, err := NewJournal(JournalConfig{MaxLine: 32})
		if err != nil {
			t.Fatal(err)
		}
		var cursor string
		n := 0
		got, err := j.read(bytes.NewReader(stream), &cursor, newCommitter(nil, "", 0), func(batch []Line) error {
			for _, l := range batch {
				if l.Pos.Cursor == "" || len(l.Text) > 32 {
					t.Fatalf("line %+v", l)
				}
			}
			n += len(batch)
			return nil
		})
		if err != nil || got != n {
			t.Fatalf("read = %d, %v; handler saw %d", got, err, n)
		}
		if lines := bytes.Count(stream, []byte("\n")) + 1; n > lines {
			t.Fatalf("%d entries from %d lines", n, lines)
		}
	})
}

// FuzzPosition feeds stored positions back (a damaged database).
func FuzzPosition(f *testing.F) {
	f.Add("file:65024:9977989:329000:512:930fd5c4")
	f.Add("journal:s=1;i=2")
	f.Fuzz(func(t *testing.T, s string) {
		var p Position
		if p.UnmarshalText([]byte(s)) != nil {
			return
		}
		b, _ := p.MarshalText()
		var q Position
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, b, q, err)
		}
	})
}

// FuzzLineSplit checks the file reader's line splitting against a plain
// split, with the data arriving in pieces of fuzzed sizes and a small
// MaxLine: every complete line once, cut to MaxLine and flagged when
// longer, with its end offset; nothing of the unfinished last line.
func FuzzLineSplit(f *testing.F) {
	f.Add([]byte("one\ntwo\n\nthree"), uint8(3), uint8(4))
	f.Add([]byte(strings.Repeat("x", 100)+"\nshort\n"), uint8(7), uint8(16))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, chunk, maxLine uint8) {
		if len(data) > 4096 {
			return // longer inputs only cost time
		}
		max, step := int(maxLine%64)+1, int(chunk%32)+1
		file, err := os.CreateTemp(dir, "log")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file.Name())
		defer file.Close()
		g := &segment{f: file}
		b := newLineBuf("f", max)
		var got []Line
		for off := 0; off < len(data); off += step {
			if _, err := file.Write(data[off:min(off+step, len(data))]); err != nil {
				t.Fatal(err)
			}
			for {
				n, err := b.read(g)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range b.batch {
					l.Text = bytes.Clone(l.Text)
					got = append(got, l)
				}
				b.clearBatch()
				if n == 0 {
					break
				}
			}
		}
		parts := bytes.Split(data, []byte("\n"))
		parts = parts[:len(parts)-1] // the unfinished rest
		if len(got) != len(parts) {
			t.Fatalf("%d lines, want %d", len(got), len(parts))
		}
		end := int64(0)
		for i, p := range parts {
			end += int64(len(p)) + 1
			want, cut := p, false
			if len(p) > max {
				want, cut = p[:max], true
			}
			if !bytes.Equal(got[i].Text, want) || got[i].Truncated != cut || got[i].Pos.Offset != end {
				t.Fatalf("line %d = %q cut=%v end=%d, want %q cut=%v end=%d", i, got[i].Text, got[i].Truncated, got[i].Pos.Offset, want, cut, end)
			}
		}
	})
}
