package f2bimport

import (
	"strings"
)

// directives are the strptime directives fail2ban's datepatterns use, as
// regular expressions (fail2ban's own are close to these).
var directives = map[byte]string{
	'Y': `\d{4}`, 'y': `\d{2}`, 'm': `\d{1,2}`, 'd': `\d{1,2}`, 'e': ` ?\d{1,2}`, 'H': `\d{1,2}`,
	'I': `\d{1,2}`, 'k': ` ?\d{1,2}`, 'l': ` ?\d{1,2}`, 'M': `\d{1,2}`, 'S': `\d{1,2}`, 'f': `\d+`,
	'j': `\d{1,3}`, 'z': `(?:Z|[+-]\d{2}(?::?\d{2})?)`, 'Z': `[A-Z]{1,5}`, 'b': `[^\W\d_]+\.?`,
	'B': `[^\W\d_]+`, 'a': `[^\W\d_]+\.?`, 'A': `[^\W\d_]+`, 'p': `[AaPp][Mm]`, 's': `\d{9,11}(?:\.\d+)?`,
	'%': `%`,
}

// genericDate is fail2ban's {DATE}: the common stamps.
const genericDate = `(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?(?: \d{4})?|\d{4}[-/.]\d\d[-/.]\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:Z|[+-]\d\d:?\d\d))?|\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(?: [+-]\d{4})?|\d{9,11}(?:\.\d+)?)`

// DateRegex turns a fail2ban datepattern into a regular expression. It
// reports whether the date stands at the start of the line, and false
// ok for a pattern it cannot read (a template name it does not know).
func DateRegex(dp string) (re string, anchored, ok bool) {
	var alts []string
	anch := true
	for _, line := range strings.Split(dp, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		a := false
		if rest, found := strings.CutPrefix(line, "{^LN-BEG}"); found {
			a, line = true, rest
			if line == "" {
				line = "{DATE}"
			}
		} else if rest, found := strings.CutPrefix(line, "^"); found {
			a, line = true, rest
		}
		anch = anch && a
		var b strings.Builder
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case strings.HasPrefix(line[i:], "{DATE}"):
				b.WriteString(genericDate)
				i += len("{DATE}") - 1
			case strings.HasPrefix(line[i:], "Epoch"):
				// fail2ban's Epoch also stands in brackets: [1387288694].
				b.WriteString(`\[?\d{9,11}(?:\.\d+)?\]?`)
				i += len("Epoch") - 1
			case strings.HasPrefix(line[i:], "TAI64N"):
				b.WriteString(`@[0-9a-f]{24}`)
				i += len("TAI64N") - 1
			case c == '{':
				return "", false, false // another template: unknown here
			case c == '(' && (i+1 >= len(line) || line[i+1] != '?' || strings.HasPrefix(line[i:], "(?P<")):
				// A group: fail2ban cuts only what it matched, and the
				// rest stays in the line; the generic handling fits better.
				return "", false, false
			case c == '\\' && i+1 < len(line):
				b.WriteString(line[i : i+2])
				i++
			case c == '%' && i+1 < len(line):
				d := line[i+1]
				i++
				if d == 'E' && i+2 < len(line) && line[i+1] == 'x' {
					d = line[i+2] // %ExY: fail2ban's exact-width variants
					i += 2
				}
				r, known := directives[d]
				if !known {
					return "", false, false
				}
				b.WriteString(r)
			default:
				b.WriteByte(c)
			}
		}
		alts = append(alts, b.String())
	}
	if len(alts) == 0 {
		return "", false, false
	}
	return "(?:" + strings.Join(alts, "|") + ")", anch, true
}
