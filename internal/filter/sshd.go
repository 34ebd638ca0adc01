package filter

import (
	"net/netip"
	"time"
)

// sshd reads OpenSSH's log (6.x to 10.x: sshd, sshd-session, sshd-auth).
//
// Modes, after fail2ban's so that its annotated samples apply:
//
//   - normal: authentication failures: "Failed <method> for …" (a
//     rejected public key of a valid account only counts towards the
//     connection's later failure, since clients offer several keys),
//     "Invalid user", PAM "Authentication failure for", "User … not
//     allowed because …", "ROOT LOGIN REFUSED", tcpwrappers "refused
//     connect", "maximum authentication attempts exceeded", "Too many
//     authentication failures", a disallowed change of user name, a
//     jsch "Auth fail" disconnect, several PAM failures of different
//     users on one connection (and a login after failures as another
//     user); plus, unlike fail2ban, "Connection closed by authenticating
//     (or invalid) user … [preauth]" of a connection that has not failed
//     otherwise: the trace of a password guesser against a key-only
//     server.
//   - ddos: normal, and what scanners and floods leave: no identification
//     string, bad protocol version, kex_exchange_identification errors,
//     banner exchange errors, corrupted packets, timeouts before
//     authentication, PerSourcePenalties drops, and every connection
//     closed or reset before authentication ([preauth]).
//   - extra: normal, and failed negotiations: no matching cipher, MAC,
//     key exchange or host key type, "No supported authentication
//     methods available", "Disconnected from authenticating user …
//     [preauth]".
//   - aggressive: ddos and extra together.
type sshd struct {
	mode        string
	ddos, extra bool
	o           Options
	clk         clock
	conns       conns
	in          interner
	h           header
	cands       []candidate
}

func init() {
	builtins["sshd"] = builtin{
		modes: []string{"normal", "ddos", "extra", "aggressive"},
		new: func(mode string, o Options) Filter {
			return &sshd{
				mode:  mode,
				ddos:  mode == "ddos" || mode == "aggressive",
				extra: mode == "extra" || mode == "aggressive",
				o:     o,
				clk:   newClock(o),
				conns: newConns(o.MaxConns),
				cands: make([]candidate, 0, maxCandidates),
			}
		},
	}
}

func (s *sshd) Name() string { return "sshd" }
func (s *sshd) Mode() string { return s.mode }

// line is the context of one line being read.
type line struct {
	r    *Result
	t    time.Time
	pid  int
	c    *conn // the connection, when the line has a pid and state exists
	msg  []byte
	pre  bool // the message ended in "[preauth]"
	unix int64
}

func isSSHDIdent(b []byte) bool {
	switch string(b) {
	case "sshd", "sshd-session", "sshd-auth":
		return true
	}
	return false
}

// Process reads one line.
func (s *sshd) Process(e Entry, r *Result) {
	if e.Truncated || len(e.Text) > s.o.MaxLine || !clean(e.Text) {
		return
	}
	h := &s.h
	if e.Journal || e.Ident != "" {
		// A journal entry is sshd's by its trusted fields only: a
		// process named sshd and run by root (see Entry.Root).
		if !isSSHDIdentStr(e.Ident) || e.Journal && !e.Root {
			return
		}
		h.time, h.pid, h.msg = e.Time, e.PID, e.Text
	} else {
		h.time = time.Time{}
		if !s.clk.syslogHeader(e.Text, h, !e.Time.IsZero()) || !isSSHDIdent(h.ident) {
			return
		}
	}
	if h.time.IsZero() {
		h.time = e.Time
	}
	if h.time.IsZero() {
		h.time = s.o.Now()
	}
	l := line{r: r, t: h.time, pid: h.pid, unix: h.time.Unix()}
	msg := trimSpaceRight(h.msg)
	if m, ok := cutSuffix(msg, " [preauth]"); ok {
		msg, l.pre = trimSpaceRight(m), true
	}
	l.msg = stripMsgPrefix(msg)
	l.c = s.conns.get(l.pid, l.unix)
	s.dispatch(&l)
}

// stripMsgPrefix removes what may precede sshd's own text: "error: ",
// "fatal: ", "PAM: ", Solaris' "[ID 800047 auth.info] ", and a kernel
// timestamp some journal setups prepend.
func stripMsgPrefix(b []byte) []byte {
	for range 4 {
		switch {
		case hasPrefix(b, "error: "):
			b = b[7:]
		case hasPrefix(b, "fatal: "):
			b = b[7:]
		case hasPrefix(b, "PAM: "):
			b = b[5:]
		case hasPrefix(b, "[ID "):
			i := indexByte(b, ']')
			if i < 0 || i+1 >= len(b) || b[i+1] != ' ' {
				return b
			}
			b = b[i+2:]
		case hasPrefix(b, "kernel:"):
			r := b[7:]
			if len(r) > 0 && r[0] == ' ' {
				r = r[1:]
			}
			if len(r) == 0 || r[0] != '[' {
				return b
			}
			i := indexByte(r, ']')
			if i < 0 {
				return b
			}
			r = r[i+1:]
			r, _ = cutPrefix(r, ":")
			r, _ = cutPrefix(r, " ")
			b = r
		default:
			return b
		}
	}
	return b
}

func (s *sshd) dispatch(l *line) {
	m := l.msg
	if len(m) == 0 {
		return
	}
	switch m[0] {
	case 'F':
		if rest, ok := cutPrefix(m, "Failed "); ok {
			s.failed(l, rest)
		}
	case 'A':
		if rest, ok := cutPrefix(m, "Accepted "); ok {
			s.accepted(l, rest)
			return
		}
		s.authFailure(l, m)
	case 'a':
		s.authFailure(l, m)
	case 'I', 'i':
		if rest, ok := cutPrefix(m[1:], "nvalid user "); ok {
			s.invalidUser(l, rest)
		} else if rest, ok := cutPrefix(m[1:], "llegal user "); ok {
			s.invalidUser(l, rest)
		}
	case 'U':
		switch {
		case hasPrefix(m, "User not known to the underlying authentication module for "):
			s.fromEnd(l, m[len("User not known to the underlying authentication module for "):], KindInvalidUser)
		case hasPrefix(m, "User "):
			s.userNotAllowed(l, m[5:])
		case hasPrefix(m, "Unable to negotiate "):
			s.negotiate(l, m[len("Unable to negotiate "):])
		}
	case 'C':
		switch {
		case hasPrefix(m, "Connection closed by "):
			s.closed(l, m[len("Connection closed by "):], false)
		case hasPrefix(m, "Connection reset by "):
			s.closed(l, m[len("Connection reset by "):], false)
		case hasPrefix(m, "Connection from "):
			s.connectionFrom(l, m[len("Connection from "):])
		}
	case 'D':
		switch {
		case hasPrefix(m, "Disconnected from "):
			s.closed(l, m[len("Disconnected from "):], true)
		case hasPrefix(m, "Disconnecting"):
			s.disconnecting(l, m[len("Disconnecting"):])
		case hasPrefix(m, "Did not receive identification string from "):
			s.ddosAt(l, token(m[len("Did not receive identification string from "):]), true)
		}
	case 'R':
		switch {
		case hasPrefix(m, "Received disconnect from "):
			s.receivedDisconnect(l, m[len("Received disconnect from "):])
		case hasPrefix(m, "ROOT LOGIN REFUSED FROM "):
			tok := token(m[len("ROOT LOGIN REFUSED FROM "):])
			s.report(l, KindAuth, tok, []byte("root"), 1, true)
		case hasPrefix(m, "Read from socket failed: Connection reset by peer"):
			if s.ddos {
				s.addrless(l, KindDDoS, nil, 1)
				s.conns.forget(l.c)
			}
		}
	case 'r':
		if rest, ok := cutPrefix(m, "refused connect from "); ok {
			// tcpwrappers: "refused connect from CLIENT (ADDR)"; the
			// address ends the line.
			if hasSuffix(rest, ")") {
				if i := lastIndexByte(rest, '('); i >= 0 {
					s.report(l, KindAuth, rest[i+1:len(rest)-1], nil, 1, true)
				}
			}
		}
	case 'm':
		if rest, ok := cutPrefix(m, "maximum authentication attempts exceeded for "); ok {
			s.maxAttempts(l, rest)
		}
	case 'p':
		if hasPrefix(m, "pam_") {
			s.pamFailure(l, m)
		}
	case 'B':
		if rest, ok := cutPrefix(m, "Bad protocol version identification "); ok && s.ddos {
			s.fromEnd(l, rest, KindDDoS)
		}
	case 'b':
		if rest, ok := cutPrefix(m, "banner exchange: Connection from "); ok && hasSuffix(rest, ": invalid format") {
			// sshd logs this after the kex_exchange_identification
			// error of the same bad banner: one probe, one failure.
			// The line only names the connection's address.
			if s.ddos && l.c != nil && l.c.kex {
				s.learn(l, token(rest))
				break
			}
			s.ddosAt(l, token(rest), true)
		}
	case 'k':
		if rest, ok := cutPrefix(m, "kex_exchange_identification: "); ok && s.ddos {
			rest, _ = cutPrefix(rest, "read: ")
			switch {
			case hasPrefix(rest, "client sent invalid protocol identifier"),
				hasPrefix(rest, "Client sent invalid protocol identifier"),
				string(rest) == "Connection closed by remote host",
				string(rest) == "Connection reset by peer":
				s.addrless(l, KindDDoS, nil, 1)
				if l.c != nil {
					l.c.kex = true
				}
			}
		}
	case 's':
		if rest, ok := cutPrefix(m, "ssh_dispatch_run_fatal: Connection from "); ok {
			if hasSuffix(rest, ": message authentication code incorrect") || hasSuffix(rest, ": Connection corrupted") {
				s.ddosAt(l, token(rest), true)
			}
		}
	case 'S':
		if rest, ok := cutPrefix(m, "SSH: Server;Ltype: "); ok {
			// "SSH: Server;Ltype: Version;Remote: 127.0.0.1-1780;…"
			// (a patched sshd): the address sits at a fixed place.
			if i := index(rest, mRemote); i >= 0 {
				v := rest[i+len(mRemote):]
				if j := indexByte(v, ';'); j >= 0 {
					v = v[:j]
				}
				if j := lastIndexByte(v, '-'); j > 0 {
					s.learn(l, v[:j])
				}
			}
		}
	case 'T':
		if rest, ok := cutPrefix(m, "Timeout before authentication for "); ok {
			if r2, ok := cutPrefix(rest, "connection from "); ok {
				// OpenSSH 9.8+: the listener logs its child's timeout;
				// the pid is the listener's, not the connection's.
				s.ddosAt(l, token(r2), false)
			} else {
				s.ddosAt(l, token(rest), true)
			}
		}
	case 'n':
		if rest, ok := cutPrefix(m, "no matching "); ok && s.extra {
			if i := index(rest, mFoundColon); i > 0 && algWords(rest[:i]) {
				s.addrless(l, KindNegotiation, nil, 1)
			}
		}
	case 'd':
		if rest, ok := cutPrefix(m, "drop connection #"); ok {
			s.penalty(l, rest)
		}
	}
}

var (
	mFromWord   = []byte("from ")
	mRemote     = []byte(";Remote: ")
	mFoundColon = []byte(" found:")
	mRhost      = []byte(" rhost=")
	mNotAllowed = []byte(" not allowed because ")
	mChangeUser = []byte(": Change of username or service not allowed: ")
	mOn         = []byte(" on ")
	mNoMatching = []byte(": no matching ")
	mFound      = []byte(" found")
	mFromBr     = []byte(" from [")
	mPenalty    = []byte(" penalty: ")
	mRuser      = []byte(" ruser=")
)

// report reports a failure pinned on the address in tok. unambiguous says
// the grammar leaves tok no other reading; then tok also teaches the
// connection its address.
func (s *sshd) report(l *line, kind Kind, tok, user []byte, attempts int, unambiguous bool) {
	a, ok := addrTok(tok)
	if ok && unambiguous {
		l.c = s.conns.open(l.pid, l.unix)
	}
	s.emit(l, kind, a, ok, tok, user, attempts)
}

// emit appends a failure; the connection's pending failures join it.
func (s *sshd) emit(l *line, kind Kind, a netip.Addr, ok bool, tok, user []byte, attempts int) {
	f := Failure{Time: l.t, Kind: kind, Attempts: attempts, User: s.in.str(user), Service: "sshd"}
	if ok {
		f.Addr = a
	} else if len(tok) > 0 {
		f.Host = display(tok, 64)
	}
	if c := l.c; c != nil {
		if ok {
			c.addr = a
		}
		f.Attempts += int(c.pending)
		if f.User == "" {
			f.User = c.pendingUser
		}
		c.pending, c.pendingUser = 0, ""
		c.failed = true
		if len(user) > 0 {
			c.addUser(user)
		}
	}
	l.r.fail(f)
}

// learn records the address a helper line gives (a connection opening,
// closing); the connection's pending failures are reported now.
func (s *sshd) learn(l *line, tok []byte) {
	l.r.ignore()
	a, ok := addrTok(tok)
	if !ok {
		return
	}
	c := l.c
	if c == nil {
		if c = s.conns.open(l.pid, l.unix); c == nil {
			return
		}
		l.c = c
	}
	c.addr = a
	if c.pending > 0 {
		s.emit(l, c.pendingKind, a, true, tok, nil, 0)
	}
}

// addrless handles a failure whose line names no address: the
// connection's address if known, else it waits for a later line of the
// connection that names it. Without a pid there is nothing to wait on:
// the failure is reported unattributable.
func (s *sshd) addrless(l *line, kind Kind, user []byte, attempts int) {
	if l.c != nil && l.c.addr.IsValid() {
		s.emit(l, kind, l.c.addr, true, nil, user, attempts)
		return
	}
	if l.c == nil && l.pid > 0 {
		l.c = s.conns.open(l.pid, l.unix)
	}
	c := l.c
	if c == nil {
		s.emit(l, kind, netip.Addr{}, false, nil, user, attempts)
		return
	}
	l.r.ignore()
	c.pending += int32(attempts)
	c.pendingKind = kind
	if len(user) > 0 && c.pendingUser == "" {
		c.pendingUser = s.in.str(user)
	}
	c.failed = true
}

// fromEnd handles "… from ADDR[ port N]" where only sshd's text follows
// the address: the last " from " is sshd's, whatever the user name holds.
func (s *sshd) fromEnd(l *line, rest []byte, kind Kind) {
	b := cutPort(rest)
	before, tok := lastToken(b)
	user, ok := cutSuffix(before, " from")
	if !ok {
		if string(before) != "from" {
			return
		}
		user = nil
	}
	if kind == KindDDoS {
		user = nil
	}
	s.report(l, kind, tok, user, 1, true)
}

// ddosAt handles a ddos-mode line whose address sits at a fixed place, in
// sshd's text only. ownPID says the line's pid is the connection's
// (otherwise it is the listener's, which serves every connection). In
// other modes the line only tells the connection's address.
func (s *sshd) ddosAt(l *line, tok []byte, ownPID bool) {
	if !ownPID {
		l.c, l.pid = nil, 0
	}
	if !s.ddos {
		s.learn(l, tok)
		return
	}
	s.report(l, KindDDoS, tok, nil, 1, ownPID)
}

func (s *sshd) invalidUser(l *line, rest []byte) {
	b := cutPort(rest)
	if i := lastIndex(b, mOn); i >= 0 && indexByte(b[i+4:], ' ') < 0 {
		b = cutPort(b[:i]) // "… from ADDR port N on LOCAL"
	}
	before, tok := lastToken(b)
	user, ok := cutSuffix(before, " from")
	if !ok {
		if string(before) != "from" {
			return
		}
		user = nil
	}
	s.report(l, KindInvalidUser, tok, user, 1, true)
}

// authFailure handles PAM's "Authentication failure for USER from ADDR[
// via HOST]" (and "authentication error", "Authentication failed").
func (s *sshd) authFailure(l *line, m []byte) {
	rest, ok := cutPrefix(m[1:], "uthentication ")
	if !ok {
		return
	}
	switch {
	case hasPrefix(rest, "failure for "):
		rest = rest[len("failure for "):]
	case hasPrefix(rest, "error for "):
		rest = rest[len("error for "):]
	case hasPrefix(rest, "failed for "):
		rest = rest[len("failed for "):]
	default:
		return
	}
	if before, tok := lastToken(rest); len(tok) > 0 {
		if b, ok := cutSuffix(before, " via"); ok && indexByte(b, ' ') >= 0 {
			rest = b
		}
	}
	s.fromEnd(l, rest, KindAuth)
}

// userNotAllowed handles "User USER from ADDR not allowed because REASON"
// and the address-less "User USER not allowed because account is locked".
func (s *sshd) userNotAllowed(l *line, rest []byte) {
	i := lastIndex(rest, mNotAllowed)
	if i < 0 {
		return
	}
	reason := rest[i+len(mNotAllowed):]
	head := rest[:i]
	switch string(reason) {
	case "not listed in AllowUsers", "listed in DenyUsers", "not in any group",
		"a group is listed in DenyGroups", "none of user's groups are listed in AllowGroups":
		before, tok := lastToken(head)
		if user, ok := cutSuffix(before, " from"); ok {
			s.report(l, KindAuth, tok, user, 1, true)
		}
	case "account is locked":
		s.addrless(l, KindAuth, head, 1)
	}
}

func (s *sshd) maxAttempts(l *line, rest []byte) {
	b := rest
	if i := lastIndexByte(b, ' '); i >= 0 && hasPrefix(b[i+1:], "ssh") && (len(b) == i+4 || digits(b[i+4:])) {
		b = b[:i]
	}
	b = cutPort(b)
	before, tok := lastToken(b)
	user, ok := cutSuffix(before, " from")
	if !ok {
		return
	}
	user, _ = cutPrefix(user, "invalid user ")
	attempts := 1
	if l.c != nil {
		attempts += int(l.c.nofail)
		l.c.nofail = 0
	}
	s.report(l, KindAuth, tok, user, attempts, true)
	if l.c != nil {
		l.c.maxed = true
	}
}

// disconnecting handles "Disconnecting: Too many authentication failures[
// for USER]" and "Disconnecting (invalid|authenticating) user USER ADDR
// port N: REASON".
func (s *sshd) disconnecting(l *line, rest []byte) {
	if r, ok := cutPrefix(rest, ": Too many authentication failures"); ok {
		if l.c != nil && l.c.maxed {
			l.r.ignore()
			return
		}
		user, _ := cutPrefix(r, " for ")
		attempts := 1
		if l.c != nil {
			attempts += int(l.c.nofail)
			l.c.nofail = 0
		}
		s.addrless(l, KindAuth, user, attempts)
		return
	}
	if r, ok := cutSuffix(rest, ": Too many authentication failures"); ok {
		if l.c != nil && l.c.maxed {
			l.r.ignore()
			return
		}
		r = cutPort(r)
		before, tok := lastToken(r)
		user, ok := userForm(before)
		if !ok {
			return
		}
		attempts := 1
		if l.c != nil {
			attempts += int(l.c.nofail)
			l.c.nofail = 0
		}
		s.report(l, KindAuth, tok, user, attempts, true)
		return
	}
	if index(rest, mChangeUser) >= 0 {
		// The user names on both sides are the client's: every reading
		// of the line is a candidate, and only an agreement counts.
		s.cands = s.cands[:0]
		for off := 0; len(s.cands) < maxCandidates; {
			i := index(rest[off:], mChangeUser)
			if i < 0 {
				break
			}
			i += off
			off = i + 1
			before, tok := lastToken(cutPort(rest[:i]))
			if user, ok := userForm(before); ok {
				s.cands = append(s.cands, candidate{tok: tok, user: user})
			}
		}
		tok, user, ok := s.resolve(l)
		s.emitResolved(l, KindAuth, tok, user, ok)
		s.conns.forget(l.c)
	}
}

// userForm reads " invalid user USER" or " authenticating user USER"
// (what precedes the address in newer messages).
func userForm(b []byte) ([]byte, bool) {
	for _, p := range [...]string{" invalid user ", " authenticating user ", "invalid user ", "authenticating user ", "user "} {
		if u, ok := cutPrefix(b, p); ok {
			return u, true
		}
	}
	return nil, false
}

// closed handles connection ends: "Connection closed by ADDR[ port N]",
// "Connection reset by …", "Disconnected from …", with "authenticating
// user USER " or "invalid user USER " before the address in newer
// versions. disconnected is the "Disconnected from" form.
func (s *sshd) closed(l *line, rest []byte, disconnected bool) {
	b := cutPort(rest)
	before, tok := lastToken(b)
	var user []byte
	withUser := false
	if len(before) > 0 {
		u, ok := userForm(before)
		if !ok {
			return
		}
		user, withUser = u, true
	}
	a, ok := addrTok(tok)
	if !ok {
		return
	}
	c := l.c
	fail := false
	switch {
	case !l.pre:
	case s.ddos:
		fail = true
	case disconnected:
		fail = withUser && s.extra
	default:
		fail = withUser && (c == nil || !c.failed)
	}
	if fail {
		attempts := 1
		if c != nil && c.nofail > 1 {
			attempts = int(c.nofail)
		}
		s.emit(l, KindPreauthClose, a, true, tok, user, attempts)
	} else {
		s.learn(l, tok)
	}
	s.conns.forget(l.c)
}

// receivedDisconnect handles "Received disconnect from ADDR[ port
// N]:CODE: TEXT" (older: "ADDR: CODE: TEXT"): code 3 "…: Auth fail" is a
// jsch client's failure, code 14 "No supported authentication methods"
// a scanner's (extra mode); any other tells the address and ends the
// connection.
func (s *sshd) receivedDisconnect(l *line, rest []byte) {
	tok := token(rest)
	var tail []byte
	if len(tok) < len(rest) {
		tail = rest[len(tok)+1:]
		if r, ok := cutPrefix(tail, "port "); ok {
			i := indexByte(r, ':')
			if i < 0 || !digits(r[:i]) {
				return
			}
			tail = r[i+1:]
		} else if t, ok := cutSuffix(tok, ":"); ok {
			tok = t
		} else {
			return
		}
	} else {
		return
	}
	for len(tail) > 0 && tail[0] == ' ' {
		tail = tail[1:]
	}
	i := indexByte(tail, ':')
	if i < 0 || !digits(tail[:i]) {
		return
	}
	code, text := string(tail[:i]), trimSpaceLeft(tail[i+1:])
	switch {
	case code == "3" && hasSuffix(text, ": Auth fail"):
		s.report(l, KindAuth, tok, nil, 1, true)
	case code == "14" && s.extra && (hasPrefix(text, "No supported authentication methods available") || hasPrefix(text, "No authentication methods available")):
		s.report(l, KindNegotiation, tok, nil, 1, true)
	default:
		s.learn(l, tok)
	}
	s.conns.forget(l.c)
}

func trimSpaceLeft(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// connectionFrom handles "Connection from ADDR port N on LOCAL port P"
// (LogLevel VERBOSE): nothing but sshd's text, the surest address.
func (s *sshd) connectionFrom(l *line, rest []byte) {
	s.learn(l, token(rest))
}

// negotiate handles "Unable to negotiate with ADDR port N: no matching
// ALG found. …" and the address-less "Unable to negotiate a ALG".
func (s *sshd) negotiate(l *line, rest []byte) {
	if !s.extra {
		return
	}
	if r, ok := cutPrefix(rest, "with "); ok {
		tok := token(r)
		i := index(r, mNoMatching)
		if i < 0 || string(cutPort(r[:i])) != string(tok) {
			return
		}
		alg := r[i+len(mNoMatching):]
		j := index(alg, mFound)
		if j <= 0 || !algWords(alg[:j]) {
			return
		}
		s.report(l, KindNegotiation, tok, nil, 1, true)
		return
	}
	if r, ok := cutPrefix(rest, "a "); ok && algWords(r) {
		s.addrless(l, KindNegotiation, nil, 1)
	}
}

// algWords reports whether b is one to three words, as in "no matching
// key exchange method found".
func algWords(b []byte) bool {
	words := 1
	for i, c := range b {
		switch {
		case c == ' ':
			if i == 0 || i == len(b)-1 || b[i-1] == ' ' {
				return false
			}
			words++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', digit(c), c == '-', c == '_':
		default:
			return false
		}
	}
	return len(b) > 0 && words <= 3
}

// penalty handles OpenSSH 9.8's PerSourcePenalties: "drop connection #N
// from [ADDR]:PORT on [LOCAL]:PORT penalty: REASON" (ddos mode).
func (s *sshd) penalty(l *line, rest []byte) {
	i := index(rest, mFromBr)
	if i < 0 || !digits(rest[:i]) {
		return
	}
	r := rest[i+len(mFromBr):]
	j := indexByte(r, ']')
	if j < 0 || !hasPrefix(r[j:], "]:") || index(r[j:], mPenalty) < 0 {
		return
	}
	if !s.ddos {
		l.r.ignore()
		return
	}
	// The listener logs this line: its pid serves every connection.
	l.c, l.pid = nil, 0
	s.report(l, KindDDoS, r[:j], nil, 1, false)
}

// accepted handles "Accepted METHOD for USER from ADDR port N ssh2[:
// KEYTYPE FINGERPRINT]": a success event; and a failure when the
// connection tried other users before (or has failures pending).
func (s *sshd) accepted(l *line, rest []byte) {
	method := token(rest)
	rest = rest[len(method):]
	rest, ok := cutPrefix(rest, " for ")
	if !ok {
		return
	}
	tok, user, info, ok := s.authLine(l, rest, false)
	l.r.ignore()
	a, aok := addrTok(tok)
	if !ok || !aok {
		return
	}
	succ := Success{Addr: a, Time: l.t, User: s.in.str(user), Method: s.in.str(method), Service: "sshd"}
	if info, ok := cutPrefix(info, ": "); ok {
		kt := token(info)
		succ.KeyType = s.in.str(kt)
		if len(kt) < len(info) {
			succ.KeyFingerprint = s.in.str(token(info[len(kt)+1:]))
		}
	}
	l.r.Successes = append(l.r.Successes, succ)
	if c := l.c; c != nil {
		c.addUser(user)
		if c.users > 1 || c.pending > 0 {
			s.emit(l, KindAuth, a, true, tok, user, int(c.nofail)+1)
		}
	}
	s.conns.forget(l.c)
}

// failed handles "Failed METHOD for [invalid user ]USER from ADDR[ port
// N][ ssh2][: INFO]".
func (s *sshd) failed(l *line, rest []byte) {
	method := token(rest)
	rest = rest[len(method):]
	rest, ok := cutPrefix(rest, " for ")
	if !ok {
		return
	}
	invalid := false
	if r, ok := cutPrefix(rest, "invalid user "); ok {
		rest, invalid = r, true
	}
	tok, user, _, ok := s.authLine(l, rest, invalid)
	kind := KindAuth
	if invalid || string(user) == "<invalid username>" {
		kind = KindInvalidUser
	}
	if string(method) == "publickey" && kind == KindAuth {
		// A valid account's rejected key: clients offer several.
		l.r.ignore()
		if a, aok := addrTok(tok); ok && aok {
			c := s.conns.open(l.pid, l.unix)
			if c != nil {
				l.c = c
				c.addr = a
				c.nofail++
				c.addUser(user)
			}
		}
		return
	}
	if l.c != nil {
		l.c.nofail = 0 // the PAM failure logged before this line is this attempt
	}
	s.emitResolved(l, kind, tok, user, ok)
}

// emitResolved reports a failure from a resolved candidate; ok false means
// the line had no single reading, and the failure is unattributable.
func (s *sshd) emitResolved(l *line, kind Kind, tok, user []byte, ok bool) {
	if !ok {
		s.emit(l, kind, netip.Addr{}, false, nil, user, 1)
		return
	}
	s.report(l, kind, tok, user, 1, true)
}

// candidate is one reading of an ambiguous line: where the address would
// be, and the user name it would leave.
type candidate struct{ tok, user []byte }

// maxCandidates bounds the readings tried per line.
const maxCandidates = 8

// authLine finds the address in "USER from ADDR[ port N][ on HOST][
// sshN][: INFO]" (after "Failed METHOD for [invalid user ]" or "Accepted
// METHOD for "). A valid account's name has no space, so the first " from
// " is sshd's. An invalid user's name is the client's: it may hold "from
// 1.2.3.4 port 22 ssh2", and so may INFO (hostbased's client user and
// host). Every place the grammar allows is a candidate, and the line is
// attributed only when they agree, or when one of them is the address the
// connection already showed unambiguously. ok is false otherwise.
func (s *sshd) authLine(l *line, rest []byte, invalid bool) (tok, user, info []byte, ok bool) {
	if !invalid {
		u := token(rest)
		if hasPrefix(rest, "<invalid username> from ") {
			u = rest[:len("<invalid username>")]
		}
		if r, ok := cutPrefix(rest[len(u):], " from "); ok && len(u) > 0 {
			t := token(r)
			if in, ok := authTail(r[len(t):]); ok {
				return t, u, in, true
			}
		}
	}
	s.cands = s.cands[:0]
	for start := 0; len(s.cands) < maxCandidates; {
		i := index(rest[start:], mFromWord)
		if i < 0 {
			break
		}
		i += start
		start = i + 1
		if i > 0 && rest[i-1] != ' ' {
			continue
		}
		r := rest[i+len(mFromWord):]
		t := token(r)
		in, ok := authTail(r[len(t):])
		if !ok || len(t) == 0 {
			continue
		}
		s.cands = append(s.cands, candidate{tok: t, user: rest[:max(i-1, 0)]})
		info = in
	}
	if len(s.cands) == 1 {
		return s.cands[0].tok, s.cands[0].user, info, true
	}
	tok, user, ok = s.resolve(l)
	return tok, user, nil, ok
}

// authTail checks what follows the address in an auth line: "[ port
// N][ on HOST][ sshN]" then the end or ": INFO".
func authTail(b []byte) (info []byte, ok bool) {
	if r, ok := cutPrefix(b, " port "); ok {
		i := 0
		for i < len(r) && digit(r[i]) {
			i++
		}
		if i == 0 {
			return nil, false
		}
		b = r[i:]
	}
	if r, ok := cutPrefix(b, " on "); ok {
		b = r[len(token(r)):]
	}
	if r, ok := cutPrefix(b, " ssh"); ok {
		i := 0
		for i < len(r) && digit(r[i]) {
			i++
		}
		b = r[i:]
	}
	if len(b) == 0 || b[0] == ':' {
		return b, true
	}
	return nil, false
}

// resolve picks the reading of s.cands: the only address they name, or
// the connection's known address among them.
func (s *sshd) resolve(l *line) (tok, user []byte, ok bool) {
	if len(s.cands) == 0 {
		return nil, nil, false
	}
	first := s.cands[0]
	agree := true
	for _, c := range s.cands[1:] {
		if !sameAddr(c.tok, first.tok) {
			agree = false
			break
		}
	}
	if agree {
		return first.tok, first.user, true
	}
	if l.c != nil && l.c.addr.IsValid() {
		for _, c := range s.cands {
			if a, ok := addrTok(c.tok); ok && a == l.c.addr {
				return c.tok, c.user, true
			}
		}
	}
	return nil, first.user, false
}

// sameAddr reports whether two address tokens name the same address (or
// are the same text, for host names).
func sameAddr(x, y []byte) bool {
	a, ok1 := parseAddr(x)
	b, ok2 := parseAddr(y)
	if ok1 && ok2 {
		return a == b
	}
	return string(x) == string(y)
}

// pamFailure handles "pam_unix(sshd:auth): authentication failure;
// logname= uid=0 euid=0 tty=ssh ruser=RUSER rhost=ADDR[  user=USER]": no
// failure on its own (a Failed line follows it for the same attempt),
// but several of them for different users, or a login as another user
// after them, are.
func (s *sshd) pamFailure(l *line, m []byte) {
	i := indexByte(m, '(')
	if i < 5 || !hasPrefix(m[i:], "(sshd:auth): authentication failure;") {
		return
	}
	for _, c := range m[4:i] {
		if c < 'a' || c > 'z' {
			return
		}
	}
	rest := m[i+len("(sshd:auth): authentication failure;"):]
	// RUSER and USER are the client's: try every " rhost=".
	s.cands = s.cands[:0]
	for start := 0; len(s.cands) < maxCandidates; {
		j := index(rest[start:], mRhost)
		if j < 0 {
			break
		}
		j += start
		start = j + 1
		r := rest[j+len(mRhost):]
		t := token(r)
		tail := trimSpaceLeft(r[len(t):])
		var user []byte
		switch {
		case len(tail) == 0:
			if k := lastIndex(rest[:j], mRuser); k >= 0 {
				user = rest[k+len(mRuser) : j]
			}
		case hasPrefix(tail, "user="):
			user = tail[len("user="):]
		default:
			continue
		}
		s.cands = append(s.cands, candidate{tok: t, user: user})
	}
	tok, user, ok := s.resolve(l)
	l.r.ignore()
	c := l.c
	if c == nil {
		if c = s.conns.open(l.pid, l.unix); c == nil {
			return
		}
		l.c = c
	}
	if a, aok := addrTok(tok); ok && aok {
		c.addr = a
	}
	c.nofail++
	c.addUser(user)
	if c.users > 1 {
		n := int(c.nofail)
		c.nofail = 0
		if c.addr.IsValid() {
			s.emit(l, KindAuth, c.addr, true, nil, user, n)
		} else {
			s.addrless(l, KindAuth, user, n)
		}
	}
}

func isSSHDIdentStr(s string) bool {
	switch s {
	case "sshd", "sshd-session", "sshd-auth":
		return true
	}
	return false
}
