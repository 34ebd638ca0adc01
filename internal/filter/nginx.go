package filter

import (
	"time"
)

// nginx's filters read its error log ("2015/01/21 10:56:10 [error]
// 2833#0: *16336 MESSAGE, client: ADDR, server: NAME, request: "…", host:
// "…"") and its access log in the combined format ("ADDR - USER [20/Jan/
// 2015:19:53:28 +0100] "REQUEST" STATUS SIZE …"), from files or through
// syslog and the journal.
//
// In the error log the address follows the message, and the request,
// host and referrer after it are the client's; so is a basic-auth user
// name in the message, but nginx cuts that at the first ':', so it can
// never hold ", client: ". The address is therefore the first ", client: "
// after a message moat knows. Where a line holds more than one, the first
// must be followed by the fields nginx writes after it (request and host
// without spaces), or the line is unattributable. In the access log the
// address is the line's first field.
type nginx struct {
	name string
	mode string
	o    Options
	clk  clock
	h    header
	in   interner
	// match reads one parsed line; it reports a failure through emit.
	match func(n *nginx, l *ngxLine)
}

// ngxLine is one nginx line, error or access.
type ngxLine struct {
	r     *Result
	t     time.Time
	level []byte // error log: "error", "crit", …
	msg   []byte // error log: the text after "PID#TID: [*CID ]"
	// Access log fields.
	access bool
	addr   []byte
	user   []byte
	req    []byte
	status int
}

func init() {
	reg := func(name string, modes []string, match func(*nginx, *ngxLine)) {
		builtins[name] = builtin{modes: modes, new: func(mode string, o Options) Filter {
			return &nginx{name: name, mode: mode, o: o, clk: newClock(o), match: match}
		}}
	}
	// http-auth: "auth" is fail2ban's name of the normal mode; "fallback"
	// reads TLS handshakes broken by scanners; aggressive reads both.
	reg("nginx-http-auth", []string{"normal", "auth", "fallback", "aggressive"}, (*nginx).httpAuth)
	reg("nginx-limit-req", []string{"normal"}, (*nginx).limitReq)
	reg("nginx-botsearch", []string{"normal"}, (*nginx).botSearch)
	reg("nginx-bad-request", []string{"normal"}, (*nginx).badRequest)
	reg("nginx-forbidden", []string{"normal"}, (*nginx).forbidden)
}

func (n *nginx) Name() string { return n.name }
func (n *nginx) Mode() string { return n.mode }

// Process reads one line.
func (n *nginx) Process(e Entry, r *Result) {
	if e.Truncated || len(e.Text) > n.o.MaxLine || !clean(e.Text) {
		return
	}
	l := ngxLine{r: r}
	if !n.parse(e, &l) {
		return
	}
	if l.t.IsZero() {
		l.t = e.Time
	}
	if l.t.IsZero() {
		l.t = n.o.Now()
	}
	n.match(n, &l)
}

// parse splits a line into its fields: an error or access line, as is or
// behind a syslog header (and the journal's "host nginx: " repeat).
func (n *nginx) parse(e Entry, l *ngxLine) bool {
	b := e.Text
	if e.Ident == "" {
		if n.native(b, l) {
			return true
		}
		h := &n.h
		h.time = time.Time{}
		if !n.clk.syslogHeader(b, h, !e.Time.IsZero()) {
			return false
		}
		b, l.t = h.msg, h.time
		if len(b) > 0 && !digit(b[0]) {
			// "host nginx: 2025/09/07 …" inside the message.
			if !tag(b, h) {
				return false
			}
			b = h.msg
		}
	}
	t := l.t
	if !n.native(b, l) {
		return false
	}
	if l.t.IsZero() {
		l.t = t
	}
	return true
}

// native reads an error or access line without any syslog header.
func (n *nginx) native(b []byte, l *ngxLine) bool {
	if len(b) < 20 {
		return false
	}
	if digit(b[0]) && b[4] == '/' {
		return n.errorLine(b, l)
	}
	return n.clk.accessLine(b, l)
}

// errorLine reads "YYYY/MM/DD HH:MM:SS [LEVEL] PID#TID: [*CID ]MESSAGE".
func (n *nginx) errorLine(b []byte, l *ngxLine) bool {
	t, k, ok := n.clk.slashStamp(b)
	if !ok {
		return false
	}
	b, ok = cutPrefix(b[k:], " [")
	if !ok {
		return false
	}
	i := indexByte(b, ']')
	if i <= 0 || i > 8 {
		return false
	}
	level := b[:i]
	b, ok = cutPrefix(b[i+1:], " ")
	if !ok {
		return false
	}
	i = indexByte(b, ' ')
	if i < 3 || b[i-1] != ':' || indexByte(b[:i], '#') < 1 {
		return false
	}
	b = b[i+1:]
	if len(b) > 0 && b[0] == '*' {
		j := indexByte(b, ' ')
		if j < 2 || !digits(b[1:j]) {
			return false
		}
		b = b[j+1:]
	}
	l.t, l.level, l.msg = t, level, b
	return true
}

// accessLine reads the combined format: "ADDR IDENT USER [STAMP]
// "REQUEST" STATUS …". nginx escapes '"' inside its variables, so the
// request ends at the first '"' followed by a status.
func (c *clock) accessLine(b []byte, l *ngxLine) bool {
	addr := token(b)
	if len(addr) == len(b) {
		return false
	}
	rest := b[len(addr)+1:]
	ident := token(rest)
	if len(ident) == len(rest) {
		return false
	}
	rest = rest[len(ident)+1:]
	// The user name is the client's and may hold " [": the stamp is the
	// first " [" that parses as one and is followed by `] "`.
	var user []byte
	for off := 0; ; {
		i := index(rest[off:], mSpaceBracket)
		if i < 0 {
			return false
		}
		i += off
		off = i + 1
		t, k, ok := c.clfStamp(rest[i+2:])
		if !ok || !hasPrefix(rest[i+2+k:], `] "`) {
			continue
		}
		user, l.t = rest[:i], t
		rest = rest[i+2+k+3:]
		break
	}
	// The request ends at `" DDD ` (or the line's end after the status).
	for off := 0; ; {
		i := indexByte(rest[off:], '"')
		if i < 0 {
			return false
		}
		i += off
		off = i + 1
		s := rest[i+1:]
		if len(s) < 4 || s[0] != ' ' || !digit(s[1]) || !digit(s[2]) || !digit(s[3]) || (len(s) > 4 && s[4] != ' ') {
			continue
		}
		l.req, l.status = rest[:i], int(s[1]-'0')*100+int(s[2]-'0')*10+int(s[3]-'0')
		break
	}
	l.access, l.addr, l.user = true, addr, user
	return true
}

var (
	mSpaceBracket = []byte(" [")
	mClient       = []byte(", client: ")
)

// fail reports a failure pinned on tok.
func (n *nginx) fail(l *ngxLine, kind Kind, tok, user []byte) {
	f := Failure{Time: l.t, Kind: kind, Attempts: 1, User: n.in.str(user), Service: n.name}
	if a, ok := addrTok(tok); ok {
		f.Addr = a
	} else if len(tok) > 0 {
		f.Host = display(tok, 64)
	}
	l.r.fail(f)
}

// client finds the address after an error message. The message text
// before it must be the service's own (no ", client: " can hold in it):
// the first ", client: " is nginx's. Where the line holds another, the
// first must be followed by the fields nginx writes, else the line is
// unattributable (nil, true). ok is false when there is no client field.
func client(msg []byte) (tok []byte, ok bool) {
	i := index(msg, mClient)
	if i < 0 {
		return nil, false
	}
	rest := msg[i+len(mClient):]
	j := indexByte(rest, ',')
	if j < 0 {
		j = len(rest)
	}
	tok = rest[:j]
	if index(rest, mClient) >= 0 && !errorTail(rest[j:]) {
		return nil, true
	}
	return tok, true
}

// errorTail checks what nginx writes after the client field: ", server:
// NAME[, request: "METHOD URI[ PROTO]"][, upstream: "…"][, host:
// "HOST"][, referrer: "…"]". The request and host hold no spaces
// (nginx refuses them); the referrer, last, may hold anything.
func errorTail(b []byte) bool {
	b, ok := cutPrefix(b, ", server: ")
	if !ok {
		return false
	}
	if i := index(b, mCommaSpace); i >= 0 {
		b = b[i:]
	} else {
		return indexByte(b, ' ') < 0
	}
	for _, f := range [...]string{", request: \"", ", upstream: \"", ", host: \""} {
		r, ok := cutPrefix(b, f)
		if !ok {
			continue
		}
		i := index(r, mQuoteComma)
		if i < 0 {
			if !hasSuffix(r, `"`) {
				return false
			}
			i = len(r) - 1
		}
		v := r[:i]
		spaces := 0
		for _, c := range v {
			if c == ' ' {
				spaces++
			}
		}
		if f == ", request: \"" && spaces > 2 || f != ", request: \"" && f != ", upstream: \"" && spaces > 0 {
			return false
		}
		b = r[i+1:]
	}
	if r, ok := cutPrefix(b, ", referrer: \""); ok {
		return hasSuffix(r, `"`)
	}
	return len(b) == 0
}

var (
	mNotFound         = []byte(` was not found in "`)
	mNotAuthenticated = []byte(`' - not authenticated: `)
	mCommaSpace       = []byte(", ")
	mQuoteComma       = []byte(`", `)
)

// httpAuth: basic-auth failures (normal, auth), TLS handshakes broken by
// scanners (fallback), or both (aggressive).
func (n *nginx) httpAuth(l *ngxLine) {
	if l.access {
		return
	}
	auth := n.mode != "fallback"
	tls := n.mode == "fallback" || n.mode == "aggressive"
	m := l.msg
	switch {
	case auth && hasPrefix(m, `user "`):
		// The user name may hold quotes; it holds no ':', so the
		// message ends where the first ", client: " starts.
		i := index(m, mClient)
		if i < 0 {
			return
		}
		head := m[len(`user "`):i]
		u, ok := cutSuffix(head, `": password mismatch`)
		if !ok {
			j := index(head, mNotFound)
			if j < 0 || !hasSuffix(head, `"`) {
				return
			}
			u, _ = cutSuffix(head[:j], `":`)
			u, _ = cutSuffix(u, `"`)
		}
		if tok, ok := client(m); ok {
			n.fail(l, KindHTTPAuth, tok, u)
		}
	case auth && hasPrefix(m, "PAM: user '"):
		i := index(m, mClient)
		if i < 0 {
			return
		}
		head := m[len("PAM: user '"):i]
		j := index(head, mNotAuthenticated)
		if j < 0 {
			return
		}
		if tok, ok := client(m); ok {
			n.fail(l, KindHTTPAuth, tok, head[:j])
		}
	case tls && string(l.level) == "crit" && (hasPrefix(m, "SSL_do_handshake() failed (SSL: ") || hasPrefix(m, "SSL_read() failed (SSL: ")):
		if tok, ok := client(m); ok {
			n.fail(l, KindTLS, tok, nil)
		}
	}
}

// limitReq: requests refused or delayed by limit_req, connections refused
// by limit_conn.
func (n *nginx) limitReq(l *ngxLine) {
	if l.access {
		return
	}
	m := l.msg
	if hasPrefix(m, "limiting requests, excess: ") || hasPrefix(m, "delaying request, excess: ") || hasPrefix(m, "limiting connections by zone ") {
		if tok, ok := client(m); ok {
			n.fail(l, KindLimitReq, tok, nil)
		}
	}
}

// forbidden: requests refused by allow/deny rules.
func (n *nginx) forbidden(l *ngxLine) {
	if !l.access && hasPrefix(l.msg, "access forbidden by rule, client: ") {
		if tok, ok := client(l.msg); ok {
			n.fail(l, KindForbidden, tok, nil)
		}
	}
}

// badRequest: requests nginx answered 400 (garbage, TLS to a plain port).
func (n *nginx) badRequest(l *ngxLine) {
	if l.access && l.status == 400 {
		n.fail(l, KindBadRequest, l.addr, nil)
	}
}

// botSearch: 404s for paths only vulnerability scanners ask for, in the
// access log ("GET /phpmyadmin/… 404") and the error log ("open()
// "/var/www/cgi-bin/php4" failed (2: No such file or directory)").
func (n *nginx) botSearch(l *ngxLine) {
	if l.access {
		if l.status == 404 && botRequest(l.req) {
			n.fail(l, KindBotSearch, l.addr, nil)
		}
		return
	}
	m := l.msg
	if !hasPrefix(m, "open() \"") && !hasPrefix(m, "\"") {
		return
	}
	// The path before the client field is the client's (a decoded URI):
	// every ", client: " after "(2: No such file or directory)" is a
	// candidate; they must agree. The request after it names the path.
	var tok []byte
	found, agree := false, true
	for off, k := 0, 0; k < maxCandidates; k++ {
		i := index(m[off:], mNoSuchFile)
		if i < 0 {
			break
		}
		i += off
		off = i + 1
		rest := m[i+len(mNoSuchFile):]
		t, ok := clientField(rest)
		if !ok {
			continue
		}
		if found && !sameAddr(t, tok) {
			agree = false
		}
		if !found {
			tok, found = t, true
			if !botRequest(requestField(rest)) {
				return
			}
		}
	}
	switch {
	case !found:
	case agree:
		n.fail(l, KindBotSearch, tok, nil)
	default:
		n.fail(l, KindBotSearch, nil, nil)
	}
}

var mNoSuchFile = []byte(" (2: No such file or directory)")

// clientField reads ", client: ADDR, server: " at the start of b.
func clientField(b []byte) ([]byte, bool) {
	b, ok := cutPrefix(b, ", client: ")
	if !ok {
		return nil, false
	}
	i := indexByte(b, ',')
	if i < 0 || !hasPrefix(b[i:], ", server: ") {
		return nil, false
	}
	return b[:i], true
}

// requestField returns the request after ", request: \"" in b.
func requestField(b []byte) []byte {
	i := index(b, mRequest)
	if i < 0 {
		return nil
	}
	r := b[i+len(mRequest):]
	if j := indexByte(r, '"'); j >= 0 {
		return r[:j]
	}
	return nil
}

var mRequest = []byte(`, request: "`)

// botRequest reports whether a request line ("GET /path HTTP/1.1") asks
// for a path only scanners ask for, as fail2ban's botsearch-common: web
// mail, phpMyAdmin, WordPress' login and admin scripts, cgi-bin,
// mysqladmin.
func botRequest(req []byte) bool {
	m := token(req)
	switch string(m) {
	case "GET", "POST", "HEAD":
	default:
		return false
	}
	if len(m) == len(req) {
		return false
	}
	p := token(req[len(m)+1:])
	if len(p) == len(req)-len(m)-1 {
		return false // no protocol: fail2ban wants one
	}
	p, ok := cutPrefix(p, "/")
	if !ok {
		return false
	}
	p, _ = cutPrefix(p, "/")
	for _, pre := range [...]string{"typo3/", "xampp/", "admin/"} {
		if r, ok := cutPrefix(p, pre); ok && phpMyAdmin(r) {
			return true
		}
	}
	if phpMyAdmin(p) {
		return true
	}
	for _, pre := range [...]string{"roundcube", "mail", "extmail", "horde", "webmail", "v-webmail", "vwebmail",
		"wp-login.php", "wp-signup.php", "wp-admin.php", "cgi-bin", "mysqladmin"} {
		if hasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// phpMyAdmin matches "pma", "myadmin", "phpmyadmin" with fail2ban's
// [Mm]y[Aa]dmin spelling, as a prefix.
func phpMyAdmin(p []byte) bool {
	if hasPrefix(p, "pma") {
		return true
	}
	p, _ = cutPrefix(p, "php")
	return len(p) >= 7 && (p[0] == 'm' || p[0] == 'M') && p[1] == 'y' && (p[2] == 'a' || p[2] == 'A') && string(p[3:7]) == "dmin"
}
