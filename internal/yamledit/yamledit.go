// Package yamledit edits a YAML file in place through its node tree:
// each edit changes the lines it must and leaves every other byte of the
// file — comments, order, quoting, blank lines — as it was.
package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Doc is a parsed file. Edits return new bytes; parse them again for the
// next edit.
type Doc struct {
	src   []byte
	lines [][]byte // with their newlines
	root  *yaml.Node
	unit  int // indentation step
}

// ErrByHand is returned where a file's shape is beyond the editor (a
// multi-line flow sequence, an anchor): edit such a file by hand.
var ErrByHand = errors.New("edit this part of the file by hand")

// Parse reads src.
func Parse(src []byte) (*Doc, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(src, &n); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	d := &Doc{src: src, unit: 2}
	for rest := src; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			d.lines = append(d.lines, rest)
			break
		}
		d.lines = append(d.lines, rest[:i+1])
		rest = rest[i+1:]
	}
	switch {
	case n.Kind == 0:
		// An empty file (or only comments): a mapping to add to.
		d.root = &yaml.Node{Kind: yaml.MappingNode, Line: len(d.lines) + 1, Column: 1}
	case n.Kind == yaml.DocumentNode && len(n.Content) == 1 && n.Content[0].Kind == yaml.MappingNode:
		d.root = n.Content[0]
	case n.Kind == yaml.DocumentNode && len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null" &&
		n.Content[0].Value == "" && n.Content[0].Anchor == "" && n.Content[0].Style == 0:
		d.root = &yaml.Node{Kind: yaml.MappingNode, Line: len(d.lines) + 1, Column: 1}
	default:
		return nil, fmt.Errorf("the file is not a YAML mapping: %w", ErrByHand)
	}
	if d.root.Anchor != "" || d.root.Tag != "!!map" && d.root.Tag != "" {
		return nil, fmt.Errorf("the file's mapping has an anchor or a tag: %w", ErrByHand)
	}
	if d.root.Style&yaml.FlowStyle != 0 {
		return nil, fmt.Errorf("the file is one flow mapping: %w", ErrByHand)
	}
	d.unit = d.indentUnit(d.root)
	return d, nil
}

// indentUnit is the file's own indentation step: the column of the first
// nested block mapping's keys minus its parent key's.
func (d *Doc) indentUnit(m *yaml.Node) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Content[0].Column > k.Column {
			return v.Content[0].Column - k.Column
		}
	}
	return 2
}

// find walks path from the root: mapping keys, or indexes into
// sequences. It returns the key node (nil for a sequence element) and the
// value; nil value when the last step is missing.
func (d *Doc) find(path []string) (key, val *yaml.Node, err error) {
	cur := d.root
	for i, p := range path {
		if cur.Anchor != "" || cur.Kind == yaml.AliasNode {
			return nil, nil, fmt.Errorf("%s uses an anchor or alias: %w", strings.Join(path[:i], "."), ErrByHand)
		}
		switch cur.Kind {
		case yaml.MappingNode:
			key, val = nil, nil
			for j := 0; j+1 < len(cur.Content); j += 2 {
				if cur.Content[j].Value == p {
					key, val = cur.Content[j], cur.Content[j+1]
				}
			}
			if val == nil {
				if i == len(path)-1 {
					return nil, nil, nil
				}
				return nil, nil, nil
			}
		case yaml.SequenceNode:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(cur.Content) {
				return nil, nil, fmt.Errorf("%s has no element %s", strings.Join(path[:i], "."), p)
			}
			key, val = nil, cur.Content[n]
		default:
			if cur.Tag == "!!null" && i == len(path)-1 {
				return nil, nil, nil
			}
			return nil, nil, fmt.Errorf("%s is not a mapping", strings.Join(path[:i], "."))
		}
		cur = val
	}
	return key, cur, nil
}

// Get returns the node at path, nil if missing.
func (d *Doc) Get(path ...string) *yaml.Node {
	_, v, err := d.find(path)
	if err != nil {
		return nil
	}
	return v
}

// endLine is the last line a node's text takes.
func endLine(n *yaml.Node) int {
	end := n.Line
	if n.Kind == yaml.ScalarNode && (n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0) {
		end += strings.Count(strings.TrimRight(n.Value, "\n"), "\n") + 1
	}
	for _, c := range n.Content {
		end = max(end, endLine(c))
	}
	return end
}

// offset is the byte offset in line (1-based) of column (1-based, in
// characters).
func (d *Doc) offset(line, col int) int {
	b := d.lines[line-1]
	off := 0
	for c := 1; c < col && off < len(b); c++ {
		_, size := utf8.DecodeRune(b[off:])
		off += size
	}
	return off
}

// splice returns the file with lines [from, to] (1-based, inclusive;
// to = from-1 inserts) replaced by repl.
func (d *Doc) splice(from, to int, repl []string) []byte {
	var b bytes.Buffer
	for i := 1; i < from; i++ {
		b.Write(d.lines[i-1])
	}
	if from > 1 && from-1 <= len(d.lines) && !bytes.HasSuffix(d.lines[from-2], []byte("\n")) {
		b.WriteByte('\n')
	}
	for _, l := range repl {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for i := to + 1; i <= len(d.lines); i++ {
		b.Write(d.lines[i-1])
	}
	return b.Bytes()
}

// replaceInLine replaces bytes [from, to) of line with s.
func (d *Doc) replaceInLine(line, from, to int, s string) []byte {
	l := d.lines[line-1]
	nl := string(l[:from]) + s + string(l[to:])
	return d.splice(line, line, []string{strings.TrimSuffix(nl, "\n")})
}

// scalarEnd finds where the scalar starting at byte off of line ends.
func scalarEnd(l []byte, off int, n *yaml.Node) (int, error) {
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		for i := off + 1; i < len(l); i++ {
			if l[i] == '\\' {
				i++
				continue
			}
			if l[i] == '"' {
				return i + 1, nil
			}
		}
		return 0, fmt.Errorf("a quoted value spans lines: %w", ErrByHand)
	case n.Style&yaml.SingleQuotedStyle != 0:
		for i := off + 1; i < len(l); i++ {
			if l[i] == '\'' {
				if i+1 < len(l) && l[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, nil
			}
		}
		return 0, fmt.Errorf("a quoted value spans lines: %w", ErrByHand)
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, fmt.Errorf("a block scalar: %w", ErrByHand)
	}
	end := len(bytes.TrimRight(l, "\r\n"))
	if i := bytes.Index(l[off:], []byte(" #")); i >= 0 {
		end = off + i
	}
	for end > off && (l[end-1] == ' ' || l[end-1] == '\t') {
		end--
	}
	return end, nil
}

// setScalar sets the scalar at path (a mapping key's value) to value,
// written as YAML text (quote it if needed). Missing mappings on the way
// are added at the end of their parent.
func (d *Doc) setScalar(path []string, value string) ([]byte, error) {
	key, v, err := d.find(path)
	if err != nil {
		return nil, err
	}
	if v != nil && key != nil {
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Line == key.Line && v.Value == "":
			// "key:" with nothing: put the value after the colon.
			l := d.lines[key.Line-1]
			off := d.offset(key.Line, key.Column)
			c := bytes.IndexByte(l[off:], ':')
			if c < 0 {
				return nil, fmt.Errorf("no colon after %s: %w", strings.Join(path, "."), ErrByHand)
			}
			return d.replaceInLine(key.Line, off+c+1, off+c+1, " "+value), nil
		case v.Kind == yaml.ScalarNode && v.Line >= 1:
			off := d.offset(v.Line, v.Column)
			end, err := scalarEnd(d.lines[v.Line-1], off, v)
			if err != nil {
				return nil, err
			}
			return d.replaceInLine(v.Line, off, end, value), nil
		}
		return nil, fmt.Errorf("%s is not a single value", strings.Join(path, "."))
	}
	return d.insertKey(path, []string{value}, true)
}

// insertKey adds path's last key under its parent (creating missing
// parents) with body: one line is an inline value, more are block lines
// (relative indentation, without the key's).
func (d *Doc) insertKey(path []string, body []string, inline bool) ([]byte, error) {
	// Find the deepest existing mapping on the path.
	parent, depth := d.root, 0
	for depth < len(path)-1 {
		_, v, err := d.find(path[:depth+1])
		if err != nil {
			return nil, err
		}
		if v == nil {
			break
		}
		if v.Kind != yaml.MappingNode || v.Style&yaml.FlowStyle != 0 {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return nil, fmt.Errorf("%s is empty: %w", strings.Join(path[:depth+1], "."), ErrByHand)
			}
			return nil, fmt.Errorf("%s is not a block mapping: %w", strings.Join(path[:depth+1], "."), ErrByHand)
		}
		parent, depth = v, depth+1
	}
	indent := 0
	at := len(d.lines) // insert after this line
	if parent != d.root {
		if len(parent.Content) == 0 {
			return nil, fmt.Errorf("%s is an empty mapping: %w", strings.Join(path[:depth], "."), ErrByHand)
		}
		indent = parent.Content[0].Column - 1
		at = endLine(parent)
	} else if len(parent.Content) > 0 {
		indent = parent.Content[0].Column - 1
	}
	var lines []string
	pad := strings.Repeat(" ", indent)
	rest := path[depth:]
	for i, k := range rest {
		if i < len(rest)-1 {
			lines = append(lines, pad+k+":")
			pad += strings.Repeat(" ", d.unit)
			continue
		}
		if inline {
			lines = append(lines, pad+k+": "+body[0])
		} else {
			lines = append(lines, pad+k+":")
			for _, b := range body {
				lines = append(lines, pad+strings.Repeat(" ", d.unit)+b)
			}
		}
	}
	if parent == d.root {
		// At the end of the file, but before a trailing comment block
		// that follows nothing? Keep it simple: at the end.
		at = len(d.lines)
	}
	return d.splice(at+1, at, lines), nil
}

// appendItem adds an item to the sequence at path: item is its YAML text, one
// line for a scalar or several for a block mapping (without the "- ").
// A missing sequence is created as a block sequence.
func (d *Doc) appendItem(path []string, item []string) ([]byte, error) {
	key, v, err := d.find(path)
	if err != nil {
		return nil, err
	}
	if v == nil {
		body := []string{"- " + item[0]}
		for _, l := range item[1:] {
			body = append(body, "  "+l)
		}
		return d.insertKey(path, body, false)
	}
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null" && key != nil:
		pad := strings.Repeat(" ", key.Column-1+d.unit)
		lines := []string{pad + "- " + item[0]}
		for _, l := range item[1:] {
			lines = append(lines, pad+"  "+l)
		}
		return d.splice(key.Line+1, key.Line, lines), nil
	case v.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf("%s is not a list", strings.Join(path, "."))
	case v.Style&yaml.FlowStyle != 0:
		if len(item) != 1 {
			return nil, fmt.Errorf("%s is a [flow] list: %w", strings.Join(path, "."), ErrByHand)
		}
		open, close, err := d.flowSpan(v)
		if err != nil {
			return nil, err
		}
		inner := strings.TrimSpace(string(d.lines[v.Line-1][open+1 : close]))
		repl := "[" + item[0] + "]"
		if inner != "" {
			repl = "[" + inner + ", " + item[0] + "]"
		}
		return d.replaceInLine(v.Line, open, close+1, repl), nil
	}
	first := v.Content[0]
	dash := d.dashColumn(first)
	if dash < 0 {
		return nil, fmt.Errorf("%s: cannot find its '-': %w", strings.Join(path, "."), ErrByHand)
	}
	pad := strings.Repeat(" ", dash)
	lines := []string{pad + "- " + item[0]}
	for _, l := range item[1:] {
		lines = append(lines, pad+"  "+l)
	}
	at := endLine(v.Content[len(v.Content)-1])
	return d.splice(at+1, at, lines), nil
}

// dashColumn finds the byte column (0-based) of the '-' before a block
// sequence item.
func (d *Doc) dashColumn(item *yaml.Node) int {
	l := d.lines[item.Line-1]
	off := d.offset(item.Line, item.Column)
	for i := off - 1; i >= 0; i-- {
		if l[i] == '-' {
			return i
		}
		if l[i] != ' ' && l[i] != '\t' {
			return -1
		}
	}
	return -1
}

// flowSpan finds the brackets of a one-line flow sequence.
func (d *Doc) flowSpan(v *yaml.Node) (open, close int, err error) {
	if endLine(v) != v.Line {
		return 0, 0, fmt.Errorf("a [flow] list over several lines: %w", ErrByHand)
	}
	l := d.lines[v.Line-1]
	open = d.offset(v.Line, v.Column)
	if open >= len(l) || l[open] != '[' {
		return 0, 0, fmt.Errorf("no '[' where the list starts: %w", ErrByHand)
	}
	depth, quote := 0, byte(0)
	for i := open; i < len(l); i++ {
		c := l[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' {
				i++
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
			if depth == 0 {
				return open, i, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("the list's ']' is not on its line: %w", ErrByHand)
}

// remove deletes item i of the sequence at path. A block list left empty
// becomes [] (an empty list, never null, which would mean "the default").
func (d *Doc) remove(path []string, i int) ([]byte, error) {
	key, v, err := d.find(path)
	if err != nil {
		return nil, err
	}
	if v == nil || v.Kind != yaml.SequenceNode || i < 0 || i >= len(v.Content) {
		return nil, fmt.Errorf("%s has no item %d", strings.Join(path, "."), i)
	}
	it := v.Content[i]
	if v.Style&yaml.FlowStyle != 0 {
		open, close, err := d.flowSpan(v)
		if err != nil {
			return nil, err
		}
		var items []string
		for j, c := range v.Content {
			if j == i {
				continue
			}
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("a [flow] list of mappings: %w", ErrByHand)
			}
			items = append(items, Quote(c.Value))
		}
		return d.replaceInLine(v.Line, open, close+1, "["+strings.Join(items, ", ")+"]"), nil
	}
	if d.dashColumn(it) < 0 {
		return nil, fmt.Errorf("%s[%d] shares its line: %w", strings.Join(path, "."), i, ErrByHand)
	}
	from, to := it.Line, endLine(it)
	if len(v.Content) > 1 {
		if i+1 < len(v.Content) && v.Content[i+1].Line <= to {
			return nil, fmt.Errorf("%s[%d] shares its line: %w", strings.Join(path, "."), i, ErrByHand)
		}
		return d.splice(from, to, nil), nil
	}
	if key == nil {
		return nil, fmt.Errorf("%s: the last item of a nested list: %w", strings.Join(path, "."), ErrByHand)
	}
	// The last item: "key: []" on the key's line, the item's lines gone.
	l := d.lines[key.Line-1]
	off := d.offset(key.Line, key.Column)
	c := bytes.IndexByte(l[off:], ':')
	if c < 0 || key.Line >= from {
		return nil, fmt.Errorf("%s: %w", strings.Join(path, "."), ErrByHand)
	}
	keyLine := strings.TrimRight(string(l[:off+c+1]), "\n") + " []" + strings.TrimRight(string(l[off+c+1:]), "\r\n")
	out := d.splice(from, to, nil)
	d2 := &Doc{}
	*d2 = *d
	d2.lines = splitLines(out)
	return d2.splice(key.Line, key.Line, []string{keyLine}), nil
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// Quote writes s as a YAML scalar that reads back as s in block and
// flow context alike: plain for simple words (80/tcp, 10.0.0.0/8),
// single-quoted otherwise (an IPv6 address: ':' in a [flow] list).
func Quote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_./+-", c)) {
			return "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
	}
	switch strings.ToLower(s) {
	case "", "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~":
		// YAML 1.1 readers take these for booleans or null.
		return "'" + s + "'"
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+s), &n); err == nil && len(n.Content) == 1 && len(n.Content[0].Content) == 2 {
		v := n.Content[0].Content[1]
		if v.Kind == yaml.ScalarNode && v.Value == s && v.Tag == "!!str" && !strings.ContainsAny(s, ",[]{}#\n") {
			return s
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// setList writes a list of scalars (YAML text) at path, which must be
// absent: an empty list is written [], never left null.
func (d *Doc) setList(path []string, items []string) ([]byte, error) {
	_, v, err := d.find(path)
	if err != nil {
		return nil, err
	}
	if v != nil {
		return nil, fmt.Errorf("%s is there already", strings.Join(path, "."))
	}
	if len(items) == 0 {
		return d.insertKey(path, []string{"[]"}, true)
	}
	body := make([]string, len(items))
	for i, it := range items {
		body[i] = "- " + it
	}
	return d.insertKey(path, body, false)
}

// SetScalar sets the scalar at path (a mapping key's value) to value,
// YAML text. Missing mappings on the way are added.
func (d *Doc) SetScalar(path []string, value string) ([]byte, error) {
	out, err := d.setScalar(path, value)
	return d.verify(out, err, func(d2 *Doc) bool {
		v := d2.Get(path...)
		if v == nil {
			return false
		}
		var got, want any
		return v.Decode(&got) == nil && yaml.Unmarshal([]byte(value), &want) == nil && reflect.DeepEqual(got, want)
	})
}

// Append adds item (YAML text: one line for a scalar, several for a
// block mapping, without the "- ") to the list at path, creating it.
func (d *Doc) Append(path []string, item []string) ([]byte, error) {
	before := 0
	if v := d.Get(path...); v != nil {
		before = len(v.Content)
	}
	out, err := d.appendItem(path, item)
	return d.verify(out, err, func(d2 *Doc) bool {
		v := d2.Get(path...)
		return v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == before+1
	})
}

// Remove deletes item i of the list at path; a block list left empty
// becomes [] (never null, which would read as "the default").
func (d *Doc) Remove(path []string, i int) ([]byte, error) {
	before := 0
	if v := d.Get(path...); v != nil {
		before = len(v.Content)
	}
	out, err := d.remove(path, i)
	return d.verify(out, err, func(d2 *Doc) bool {
		v := d2.Get(path...)
		return v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == before-1
	})
}

// SetList writes a list of scalars (YAML text) at path, which must be
// absent; an empty list is written [].
func (d *Doc) SetList(path []string, items []string) ([]byte, error) {
	out, err := d.setList(path, items)
	return d.verify(out, err, func(d2 *Doc) bool {
		v := d2.Get(path...)
		return v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == len(items)
	})
}

// verify re-reads an edit's output: it must parse, keep every top-level
// key, and show the edit; otherwise the file's shape fooled the editor.
func (d *Doc) verify(out []byte, err error, took func(*Doc) bool) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	d2, perr := Parse(out)
	if perr != nil || !took(d2) {
		return nil, fmt.Errorf("the edit does not read back as intended: %w", ErrByHand)
	}
	for i := 0; i+1 < len(d.root.Content); i += 2 {
		if d2.Get(d.root.Content[i].Value) == nil {
			return nil, fmt.Errorf("the edit loses %s: %w", d.root.Content[i].Value, ErrByHand)
		}
	}
	return out, nil
}

// SetBlock sets the value at path (a mapping key's) to a block mapping
// given as YAML lines, indented relative to the key. An existing block
// mapping there is replaced whole — its own comments with it — while the
// key's line and everything around it stay as they were; a missing key
// is added at the end of its parent.
func (d *Doc) SetBlock(path []string, body []string) ([]byte, error) {
	out, err := d.setBlock(path, body)
	return d.verify(out, err, func(d2 *Doc) bool {
		v := d2.Get(path...)
		if v == nil {
			return false
		}
		var got, want any
		return v.Decode(&got) == nil && yaml.Unmarshal([]byte(strings.Join(body, "\n")), &want) == nil && reflect.DeepEqual(got, want)
	})
}

func (d *Doc) setBlock(path []string, body []string) ([]byte, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("an empty block for %s", strings.Join(path, "."))
	}
	key, v, err := d.find(path)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return d.insertKey(path, body, false)
	}
	if key == nil {
		return nil, fmt.Errorf("%s is a list element: %w", strings.Join(path, "."), ErrByHand)
	}
	if v.Anchor != "" || v.Kind == yaml.AliasNode {
		return nil, fmt.Errorf("%s uses an anchor or alias: %w", strings.Join(path, "."), ErrByHand)
	}
	indent := key.Column - 1 + d.unit
	from, to := key.Line+1, key.Line // after the key's line: insert
	switch {
	case v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Line > key.Line:
		indent = v.Content[0].Column - 1
		from, to = v.Line, endLine(v)
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value == "" && v.Line == key.Line:
		// "key:" with nothing after it (or only a comment).
	default:
		return nil, fmt.Errorf("%s is not a block mapping: %w", strings.Join(path, "."), ErrByHand)
	}
	pad := strings.Repeat(" ", indent)
	lines := make([]string, len(body))
	for i, b := range body {
		lines[i] = pad + b
	}
	return d.splice(from, to, lines), nil
}
