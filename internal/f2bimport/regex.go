package f2bimport

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/moat-sh/moat/internal/filter"
)

// datePrefix stands for the timestamp fail2ban cuts from a line before it
// matches, where moat matches whole lines: syslog, RFC 3339 or ISO 8601,
// nginx's 2006/01/02 and a bracketed stamp. Optional: a journal
// message carries none.
const datePrefix = `(?:(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}[-/]\d\d[-/]\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?|\[[^\]]*\]) *)?`

// bracketStamp stands where fail2ban left "[]" after cutting a
// bracketed stamp ([Sun Jun 09 07:57:47 2013], [10/Oct/2000:13:55:36
// -0700]): brackets holding a time of day.
const bracketStamp = `\[[^\]]*\d\d:\d\d:\d\d[^\]]*\]`

var (
	fTagOpen  = regexp.MustCompile(`<F-([A-Za-z0-9_]+)>`)
	fTagClose = regexp.MustCompile(`</F-[A-Za-z0-9_]+>`)
	addrTags  = regexp.MustCompile(`<(?:ADDR|IP4|IP6)>`)
	contentRE = regexp.MustCompile(`<F-CONTENT>.*?</F-CONTENT>`)
	ipAlt     = regexp.MustCompile(`\(\?:(?:\(\?:IPv6:\)\?|IPv6:)?<IP6>\|<IP4>\)|\(\?:<IP4>\|(?:\(\?:IPv6:\)\?|IPv6:)?<IP6>\)`)
)

// Translated is one fail2ban regex in moat's user-filter syntax, or why it
// has none.
type Translated struct {
	From  string // fail2ban's, expanded
	Regex string // moat's; "" when Skip says why not
	Skip  string
}

// TranslateFail turns each failregex of f into moat's user-filter syntax
// (whole-line RE2 with one <HOST>), joining it with the prefregex as
// fail2ban does, and checks it with internal/filter exactly as `moat
// config check` will.
func TranslateFail(f *Filter) []Translated {
	var out []Translated
	for _, r := range f.FailRegex {
		t := Translated{From: r}
		t.Regex, t.Skip = translate(r, f, true)
		if t.Skip == "" {
			if _, err := filter.Compile("import", filter.Custom{Regex: []string{t.Regex}}, filter.Options{}); err != nil {
				t.Regex, t.Skip = "", "moat cannot compile it: "+err.Error()
			}
		}
		out = append(out, t)
	}
	return out
}

// TranslateIgnore does the same for ignoreregex; <HOST> there stands for
// any address.
func TranslateIgnore(f *Filter) []Translated {
	var out []Translated
	for _, r := range f.IgnoreRegex {
		t := Translated{From: r}
		t.Regex, t.Skip = translate(r, f, false)
		if t.Skip == "" {
			if _, err := regexp.Compile(`^(?:` + t.Regex + `)$`); err != nil {
				t.Regex, t.Skip = "", "moat cannot compile it: "+err.Error()
			}
		}
		out = append(out, t)
	}
	return out
}

// unsupported are Python regex constructs RE2 lacks, with why.
var unsupported = []struct{ seq, why string }{
	{"(?=", "a lookahead"},
	{"(?!", "a negative lookahead"},
	{"(?<=", "a lookbehind"},
	{"(?<!", "a negative lookbehind"},
	{"(?P=", "a backreference"},
	{"(?(", "a conditional group"},
	{"(?#", "a comment group"},
}

var backref = regexp.MustCompile(`\\[1-9]`)

func translate(r string, f *Filter, fail bool) (string, string) {
	pref := f.PrefRegex
	switch {
	case strings.Contains(r, "<SKIPLINES>"):
		return "", "it spans several lines (<SKIPLINES>); moat matches one line at a time"
	case strings.Contains(r, "<F-NOFAIL>"):
		return "", "it marks a line that is no failure by itself (<F-NOFAIL>), for fail2ban's multi-line matching"
	case strings.Contains(r, "<F-MLFGAINED>"):
		return "", "it matches a successful login (<F-MLFGAINED>), which moat's sshd filter handles itself"
	case strings.Contains(r, "<DNS>") || strings.Contains(r, "<CIDR>") || strings.Contains(r, "<SUBNET>"):
		return "", "it matches host names or networks; moat bans addresses it reads and never resolves names"
	}
	for _, part := range []struct{ what, re string }{{"it", r}, {"its filter's prefregex", pref}} {
		for _, u := range unsupported {
			if strings.Contains(part.re, u.seq) {
				return "", fmt.Sprintf("%s uses %s (%s), which Go's linear-time regular expressions lack", part.what, u.why, u.seq)
			}
		}
	}
	body := r
	if pref != "" {
		inner := strings.TrimPrefix(body, "^")
		if inner == body {
			inner = ".*" + inner // fail2ban searches the content
		}
		inner = strings.TrimSuffix(inner, "$")
		if !contentRE.MatchString(pref) {
			return "", "its prefregex has no <F-CONTENT>"
		}
		body = contentRE.ReplaceAllLiteralString(pref, "(?:"+inner+")")
	}
	for _, u := range unsupported {
		if strings.Contains(body, u.seq) {
			return "", fmt.Sprintf("it uses %s (%s), which Go's linear-time regular expressions lack", u.why, u.seq)
		}
	}
	if backref.MatchString(strings.ReplaceAll(body, `\\`, "")) {
		return "", "it uses a backreference, which Go's linear-time regular expressions lack"
	}
	// Either family is one <HOST> in moat.
	body = ipAlt.ReplaceAllString(body, "(?:IPv6:)?<HOST>")
	body = addrTags.ReplaceAllString(body, "<HOST>")
	user := false
	body = fTagOpen.ReplaceAllStringFunc(body, func(t string) string {
		if t == "<F-USER>" && !user {
			user = true
			return "(?P<user>"
		}
		return "(?:"
	})
	body = fTagClose.ReplaceAllString(body, ")")
	body = strings.ReplaceAll(body, `\Z`, `\z`)
	body = strings.ReplaceAll(body, "{,", "{0,")
	if fail {
		if n := strings.Count(body, "<HOST>"); n != 1 {
			return "", fmt.Sprintf("moat needs exactly one <HOST> in a regex; this one has %d", n)
		}
	} else {
		body = strings.ReplaceAll(body, "<HOST>", `[0-9A-Fa-f:.]+`)
	}
	// fail2ban cuts the timestamp and searches; moat matches whole lines:
	// the date goes back where the filter's datepattern says it stands.
	date, anchored, known := "", false, false
	switch strings.TrimSpace(f.DatePattern) {
	case "", "{^LN-BEG}", "{DATE}":
		// fail2ban's default templates: the generic prefix stands for them.
	default:
		date, anchored, known = DateRegex(f.DatePattern)
	}
	lead := strings.HasPrefix(body, "^")
	body = strings.TrimLeft(body, "^") // Python reads ^^ as ^
	switch {
	case known && anchored:
		if f.Journal {
			date = "(?:" + date + ")?" // a journal message carries none
		}
		if lead {
			body = date + body
		} else {
			body = date + ".*?" + body
		}
	case known && strings.Contains(body, `\[\]`):
		// The stamp stood between brackets fail2ban left empty.
		body = strings.Replace(body, `\[\]`, `\[`+date+`\]`, 1)
		if !lead {
			body = ".*?" + body
		}
	case lead:
		body = datePrefix + strings.Replace(body, `\[\]`, bracketStamp, 1)
	default:
		body = ".*?" + strings.Replace(body, `\[\]`, bracketStamp, 1)
	}
	if !strings.HasSuffix(body, "$") || strings.HasSuffix(body, `\$`) {
		body += ".*"
	}
	return body, ""
}
