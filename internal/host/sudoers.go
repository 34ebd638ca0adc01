package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
)

// SudoRule is one logical line of a sudoers file (continuations joined,
// comments removed) that is not an include directive.
type SudoRule struct {
	File string // path on the host, without the root prefix
	Line int    // first physical line
	Text string
	// NoPasswd is set when the rule lets someone run commands without a
	// password: a NOPASSWD tag, or Defaults !authenticate.
	NoPasswd bool
}

// maxSudoDepth bounds include nesting, as sudo itself does.
const maxSudoDepth = 16

var (
	noPasswdTag     = regexp.MustCompile(`\bNOPASSWD\s*:`)
	noAuthenticate  = regexp.MustCompile(`^Defaults\S*\s.*!\s*authenticate\b`)
	includeDirRegex = regexp.MustCompile(`^[#@]includedir\s+(.+)$`)
	includeRegex    = regexp.MustCompile(`^[#@]include\s+(.+)$`)
)

// SudoRules reads <root>/etc/sudoers and the files it includes, following
// @include/#include and @includedir/#includedir as sudo does: in a
// directory, files are read in lexical order and names containing '.' or
// ending in '~' are skipped. Relative includes are resolved against the
// including file's directory. Files that do not exist are skipped.
func (h *Host) SudoRules() ([]SudoRule, error) {
	var out []SudoRule
	if err := h.readSudoers("/etc/sudoers", 0, map[string]bool{}, &out); err != nil {
		return nil, fmt.Errorf("sudoers: %w", err)
	}
	return out, nil
}

func (h *Host) readSudoers(file string, depth int, seen map[string]bool, out *[]SudoRule) error {
	if depth > maxSudoDepth {
		return fmt.Errorf("%s: includes nested more than %d deep", file, maxSudoDepth)
	}
	if seen[file] {
		return nil // an include loop; sudo would refuse, visudo -c reports it
	}
	seen[file] = true
	b, err := h.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && depth > 0 {
			return nil
		}
		return err
	}
	for _, l := range sudoersLines(string(b)) {
		if m := includeDirRegex.FindStringSubmatch(l.text); m != nil {
			dir := resolveInclude(file, m[1])
			entries, err := os.ReadDir(h.Path(dir))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("%s:%d: %w", file, l.n, hint(err))
			}
			for _, e := range entries { // ReadDir sorts by name
				name := e.Name()
				if strings.Contains(name, ".") || strings.HasSuffix(name, "~") || e.IsDir() {
					continue
				}
				if err := h.readSudoers(path.Join(dir, name), depth+1, seen, out); err != nil {
					return err
				}
			}
			continue
		}
		if m := includeRegex.FindStringSubmatch(l.text); m != nil {
			if err := h.readSudoers(resolveInclude(file, m[1]), depth+1, seen, out); err != nil {
				return err
			}
			continue
		}
		*out = append(*out, SudoRule{
			File: file, Line: l.n, Text: l.text,
			NoPasswd: noPasswdTag.MatchString(l.text) || noAuthenticate.MatchString(l.text),
		})
	}
	return nil
}

// resolveInclude resolves an include argument: quotes removed, relative
// to the including file's directory.
func resolveInclude(from, arg string) string {
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		arg = strings.ReplaceAll(arg[1:len(arg)-1], `\"`, `"`)
	}
	if !path.IsAbs(arg) {
		arg = path.Join(path.Dir(from), arg)
	}
	return path.Clean(arg)
}

type sudoersLine struct {
	n    int
	text string
}

// sudoersLines joins backslash continuations, drops comments and blank
// lines, and keeps include directives (which look like comments) and
// "#123" user IDs (which do too).
func sudoersLines(s string) []sudoersLine {
	var out []sudoersLine
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(s, "\n") {
		if cur.Len() == 0 {
			start = i + 1
		}
		line := strings.TrimRight(raw, " \t\r")
		cont := strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`)
		if cont {
			line = strings.TrimRight(line[:len(line)-1], " \t")
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
			line = strings.TrimLeft(line, " \t")
		}
		cur.WriteString(line)
		if cont {
			continue
		}
		text := stripSudoComment(strings.TrimSpace(cur.String()))
		cur.Reset()
		if text != "" {
			out = append(out, sudoersLine{start, text})
		}
	}
	if cur.Len() > 0 { // a continuation at end of file
		if text := stripSudoComment(strings.TrimSpace(cur.String())); text != "" {
			out = append(out, sudoersLine{start, text})
		}
	}
	return out
}

// stripSudoComment removes a trailing comment. A '#' starts a comment
// unless it is an include directive at the start of the line or is
// followed by a digit (a numeric UID or GID, as in "#0" or "%#1000").
func stripSudoComment(s string) string {
	if includeDirRegex.MatchString(s) || includeRegex.MatchString(s) {
		return s
	}
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '#':
			if quoted || i+1 < len(s) && '0' <= s[i+1] && s[i+1] <= '9' {
				continue
			}
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// VisudoCheck runs `visudo -c` to validate the sudoers files, including
// their ownership and modes. Under a fixture root, or without visudo,
// it returns ErrUnavailable. A failed check returns an error carrying
// visudo's message.
func (h *Host) VisudoCheck(ctx context.Context) error {
	if !h.Live() {
		return fmt.Errorf("visudo -c: %w under a fixture root", ErrUnavailable)
	}
	_, err := run(ctx, "visudo", "-c")
	return err
}

// NoPasswdRules returns the rules of rules with NoPasswd set.
func NoPasswdRules(rules []SudoRule) []SudoRule {
	return slices.DeleteFunc(slices.Clone(rules), func(r SudoRule) bool { return !r.NoPasswd })
}
