package sshd

import (
	"errors"
	"strings"
)

// This file mirrors the two tokenizers sshd applies to a config line
// (OpenSSH misc.c strdelim and argv_split), so that the fixture copier finds
// exactly the Include lines and paths sshd would. Only Include lines are
// rewritten; every other line is copied byte for byte.

const cfgWhitespace = " \t\r\n"

var errUnbalancedQuote = errors.New("unbalanced quote")

// strdelim returns the first token of s and the rest, as sshd's
// strdelim_internal(s, split_equals=1) does: a token ends at whitespace, a
// double quote or one '='; a leading quoted token runs to the next quote.
// ok is false where sshd's returns NULL (no closing quote).
func strdelim(s string) (tok, rest string, more, ok bool) {
	i := strings.IndexAny(s, cfgWhitespace+`"=`)
	if i < 0 {
		return s, "", false, true
	}
	if s[i] == '"' {
		s = s[:i] + s[i+1:]
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return "", "", false, false
		}
		j += i
		return s[:j], skipWhitespace(s[j+1:]), true, true
	}
	equals := s[i] == '='
	tok, rest = s[:i], skipWhitespace(s[i+1:])
	if !equals && strings.HasPrefix(rest, "=") {
		rest = skipWhitespace(rest[1:])
	}
	return tok, rest, true, true
}

func skipWhitespace(s string) string { return strings.TrimLeft(s, cfgWhitespace) }

// splitKeyword returns a config line's keyword and its argument string the
// way sshd's process_server_config_line does: trailing whitespace (and form
// feeds) dropped, one run of leading whitespace skipped. ok is false for
// lines sshd ignores or rejects before looking at the keyword (blank,
// comment, no argument, unbalanced quote).
func splitKeyword(line string) (keyword, args string, ok bool) {
	line = strings.TrimRight(line, cfgWhitespace+"\f")
	if line == "" {
		return "", "", false
	}
	kw, rest, more, ok := strdelim(line)
	if !ok {
		return "", "", false
	}
	if kw == "" && more {
		kw, rest, more, ok = strdelim(rest)
		if !ok {
			return "", "", false
		}
	}
	if kw == "" || kw[0] == '#' || !more || rest == "" {
		return "", "", false
	}
	return kw, rest, true
}

// argvSplit splits an argument string like sshd's argv_split(s, ..., 1):
// blanks separate words, single or double quotes group, a backslash escapes
// a quote, a backslash or (outside quotes) a space, and an unquoted '#' at
// the start of a word ends the line.
func argvSplit(s string) ([]string, error) {
	var argv []string
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var arg strings.Builder
		var quote byte
	scan:
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\':
				if i+1 < len(s) {
					n := s[i+1]
					if n == '\'' || n == '"' || n == '\\' || (quote == 0 && n == ' ') {
						i++
						arg.WriteByte(n)
						continue
					}
				}
				arg.WriteByte(c) // unrecognised escape: kept as is
			case quote == 0 && (c == ' ' || c == '\t'):
				break scan
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			default:
				arg.WriteByte(c)
			}
		}
		if quote != 0 {
			return nil, errUnbalancedQuote
		}
		argv = append(argv, arg.String())
	}
	return argv, nil
}

// quoteArg quotes s so that argvSplit (and sshd) reads it back unchanged.
func quoteArg(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// SplitLine reads one sshd_config line as sshd does: its keyword and
// arguments ("PasswordAuthentication=yes" and "PasswordAuthentication
// \"yes\"" both give PasswordAuthentication, [yes]); ok is false for
// blank lines, comments and lines sshd would reject.
func SplitLine(line string) (keyword string, args []string, ok bool) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	kw, rest, ok := splitKeyword(line)
	if !ok {
		return "", nil, false
	}
	argv, err := argvSplit(rest)
	if err != nil || len(argv) == 0 {
		return "", nil, false
	}
	return kw, argv, true
}
