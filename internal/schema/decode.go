package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Unmarshaler is implemented by value types that decode themselves from one
// YAML node. Errors they return are placed at the node.
type Unmarshaler interface {
	UnmarshalNode(n *yaml.Node) error
}

// Doc is a decoded file: where each key path was written, so that errors
// found after decoding (by Validate) can still name file:line:col.
type Doc struct {
	File  string
	nodes map[string]*yaml.Node
}

// Pos returns where path was written, or where its nearest written parent
// was, or the file alone.
func (d *Doc) Pos(path string) Pos {
	for p := path; ; {
		if n, ok := d.nodes[p]; ok {
			return Pos{File: d.File, Line: n.Line, Col: n.Column}
		}
		if p == "" {
			return Pos{File: d.File}
		}
		p = parent(p)
	}
}

// Place turns a Validate error of the section at prefix into positioned
// Errors.
func (d *Doc) Place(prefix string, err error) Errors {
	var out Errors
	for _, e := range flatten(err) {
		var fe *FieldError
		path, msg := prefix, e.Error()
		if errors.As(e, &fe) {
			path, msg = joinPath(prefix, fe.Path), fe.Msg
		}
		out = append(out, &Error{Pos: d.Pos(path), Path: path, Msg: msg})
	}
	return out
}

func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Decode strictly decodes YAML data into out (a pointer to a struct whose
// fields carry `yaml:"name"` tags). Unknown keys, duplicate keys, wrong
// types and values rejected by an Unmarshaler are all reported, each with
// file:line:col; on any error out must be discarded.
func Decode(file string, data []byte, out any) (*Doc, error) {
	doc := &Doc{File: file, nodes: map[string]*yaml.Node{}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if err.Error() == "EOF" {
			return doc, nil // an empty file is the all-defaults config
		}
		return nil, Errors{syntaxError(file, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{Pos: Pos{file, extra.Line, extra.Column}, Msg: "a second YAML document; moat reads one document per file"}}
	}
	d := decoder{doc: doc}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return doc, nil
		}
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		for _, l := range strings.Split(string(data), "\n") {
			if h := iniFile(l); h != "" {
				return nil, Errors{{Pos: Pos{file, n.Line, n.Column}, Msg: "expected a mapping of keys, found " + kindName(n) + h}}
			}
		}
	}
	d.value("", n, reflect.ValueOf(out).Elem())
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return doc, nil
}

func syntaxError(file string, data []byte, err error) *Error {
	// yaml.v3 reports "yaml: line N: msg" without a column.
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	// fail2ban's INI: the line named, or the one before (YAML reports
	// "could not find expected ':'" on the line after).
	lines := strings.Split(string(data), "\n")
	for _, l := range []int{line, line - 1} {
		if l >= 1 && l <= len(lines) {
			if h := iniFile(lines[l-1]); h != "" {
				msg += h
				break
			}
		}
	}
	return &Error{Pos: Pos{File: file, Line: line, Col: 1}, Msg: "invalid YAML: " + msg}
}

type decoder struct {
	doc  *Doc
	errs Errors
}

func (d *decoder) fail(path string, n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: Pos{d.doc.File, n.Line, n.Column}, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[Unmarshaler]()

func (d *decoder) value(path string, n *yaml.Node, v reflect.Value) {
	d.doc.nodes[path] = n
	if n.Kind == yaml.AliasNode {
		d.fail(path, n, "YAML aliases are not supported; write the value out")
		return
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(path, n, v.Elem())
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode && n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
			d.fail(path, n, "unexpected %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(Unmarshaler).UnmarshalNode(n); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				d.errs = append(d.errs, pe)
				return
			}
			d.fail(path, n, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structValue(path, n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if isNull(n) {
				v.SetZero()
				return
			}
			d.fail(path, n, "expected a list, found %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(fmt.Sprintf("%s[%d]", path, i), c, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if isNull(n) {
				v.SetZero()
				return
			}
			d.fail(path, n, "expected a mapping of names to values, found %s", kindName(n))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			panic("schema: map keys must be strings")
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				d.fail(path, k, "expected a name as key")
				continue
			}
			if seen[k.Value] {
				d.fail(path, k, "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			e := reflect.New(v.Type().Elem()).Elem()
			d.value(joinPath(path, k.Value), val, e)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.fail(path, n, "expected a string, found %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(path, n, "expected true or false, found %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil || v.OverflowInt(i) {
			d.fail(path, n, "expected a whole number, found %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil || v.OverflowUint(u) {
			d.fail(path, n, "expected a whole number from 0 to %d, found %s", maxUint(v), describe(n))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || err != nil {
			d.fail(path, n, "expected a number, found %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		panic("schema: unsupported field kind " + v.Kind().String())
	}
}

func maxUint(v reflect.Value) uint64 {
	return math.MaxUint64 >> (64 - v.Type().Bits())
}

func (d *decoder) structValue(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return // an empty section keeps its defaults
	}
	if n.Kind != yaml.MappingNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = iniHint(n.Value)
		}
		d.fail(path, n, "expected a mapping of keys, found %s%s", kindName(n), hint)
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k, "expected a key name")
			continue
		}
		if seen[k.Value] {
			d.fail(joinPath(path, k.Value), k, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			hint := habitHint(k.Value, fields)
			if hint == "" {
				hint = suggest(k.Value, fields)
			}
			d.fail(joinPath(path, k.Value), k, "unknown key %q%s", k.Value, hint)
			continue
		}
		f := v.Type().Field(idx)
		if val.Kind == yaml.ScalarNode && val.Value == "permanent" && f.Type == durationType {
			if _, opts, _ := strings.Cut(f.Tag.Get("yaml"), ","); !strings.Contains(","+opts+",", ",permanent,") {
				d.fail(joinPath(path, k.Value), val, "expected a duration like 10m or 7d; permanent is only for a jail's bantime")
				continue
			}
		}
		d.value(joinPath(path, k.Value), val, v.Field(idx))
	}
}

var durationType = reflect.TypeFor[Duration]()

// fieldsOf maps yaml key names to struct field indexes.
func fieldsOf(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 3
	for name := range fields {
		names = append(names, name)
		if dist := editDistance(key, name); dist < bestD {
			best, bestD = name, dist
		}
	}
	sort.Strings(names)
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	if len(names) == 0 {
		return "; this section takes no keys"
	}
	return "; expected one of: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return describe(n)
}

func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing"
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// Scalar returns the node's text, or an error when it is not a scalar.
// Value types use it in UnmarshalNode.
func Scalar(n *yaml.Node, want string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", fmt.Errorf("expected %s, found %s", want, kindName(n))
	}
	return n.Value, nil
}
