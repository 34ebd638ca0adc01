package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Kind says what sort of failure a line reports.
type Kind string

// The kinds of failure the built-in filters report.
const (
	KindAuth         Kind = "auth"          // a failed authentication of a known account
	KindInvalidUser  Kind = "invalid-user"  // an attempt on an account that does not exist
	KindPreauthClose Kind = "preauth-close" // a connection dropped before authenticating
	KindDDoS         Kind = "ddos"          // a scanner or flood at the protocol level
	KindNegotiation  Kind = "negotiation"   // no common algorithm or auth method: a scanner
	KindHTTPAuth     Kind = "http-auth"     // an HTTP basic or form authentication failure
	KindLimitReq     Kind = "limit-req"     // a request refused by a rate or connection limit
	KindBotSearch    Kind = "botsearch"     // a probe for well-known vulnerable paths
	KindBadRequest   Kind = "bad-request"   // a malformed request (HTTP 400)
	KindForbidden    Kind = "forbidden"     // a request refused by an access rule
	KindTLS          Kind = "tls"           // a broken TLS handshake
	KindHoneypot     Kind = "honeypot"      // a touch of a trap only an attacker finds
	KindCustom       Kind = "custom"        // a match of a user-defined filter
)

// Failure is one failure a log line reports.
type Failure struct {
	// Addr is the peer the failure is pinned on. The zero Addr marks a
	// failure that cannot be attributed: the log named a host name (never
	// resolved: the attacker controls its DNS), a malformed address, or
	// the line was ambiguous. Such failures are counted and ban nothing.
	Addr netip.Addr
	// Host is the text the log had in the address position when Addr is
	// the zero Addr, for display only; empty otherwise.
	Host string
	// Time is the line's own timestamp (or the journal's).
	Time time.Time
	Kind Kind
	// Attempts is how many failed attempts the line stands for, at least
	// 1: a summary such as "Too many authentication failures" counts the
	// attempts of its connection.
	Attempts int
	// User is the account tried, sanitized (printable ASCII, at most 64
	// bytes) for alerts; it is attacker-controlled text all the same.
	User string
	// Service is the filter's name: "sshd", "nginx-http-auth", …
	Service string
}

// Attributable reports whether the failure names an address to ban.
func (f Failure) Attributable() bool { return f.Addr.IsValid() }

// Success is an accepted login (sshd), for alerts.
type Success struct {
	Addr   netip.Addr
	Time   time.Time
	User   string
	Method string // password, publickey, keyboard-interactive/pam, …
	// KeyType and KeyFingerprint describe the key of a publickey login,
	// as sshd logged them ("ED25519", "SHA256:…").
	KeyType        string
	KeyFingerprint string
	Service        string
}

// Entry is one log record as a filter sees it. It mirrors logwatch.Line
// without importing it: the daemon copies the fields over.
type Entry struct {
	// Text is the line without its newline, or a journal entry's MESSAGE.
	// Filters do not keep it after Process returns.
	Text []byte
	// Time is the journal's timestamp of the entry; zero when the text
	// carries its own (a file line).
	Time time.Time
	// Journal marks a journal entry: Text is the bare MESSAGE, never
	// read as a syslog line (its text is the sender's to choose), and
	// Ident, PID and Root are what journald recorded of the sender.
	Journal bool
	// Ident and PID name the program that logged the entry, when the
	// caller knows it better than the text does. For a journal entry
	// they are the trusted _COMM and _PID, which journald takes from the
	// kernel's view of the sender; SYSLOG_IDENTIFIER and SYSLOG_PID are
	// whatever the sender wrote (`logger -t sshd`) and are never used.
	// When Ident is empty and Journal is false, the filter reads them
	// from the line's syslog header.
	Ident string
	PID   int
	// Root: the journal recorded the sender's uid (_UID) as 0. Any user
	// may run a process named sshd (_COMM is the process's own name,
	// which it can set), but only root runs one with _UID=0.
	Root bool
	// Truncated marks a line cut short by the reader. Nothing is
	// attributed from it: the cut may have dropped the real address and
	// left an injected one.
	Truncated bool
}

// EntryFromFields builds an Entry from a journal entry's MESSAGE, time and
// fields, as logwatch hands them over. A nil fields map means a file line.
// Only trusted fields count (journald sets the fields whose names start
// with '_'; the sender sets the others): the program is _COMM, its pid
// _PID, and Root is _UID=0.
func EntryFromFields(text []byte, t time.Time, fields map[string]string) Entry {
	e := Entry{Text: text, Time: t}
	if fields != nil {
		e.Journal = true
		e.Ident = fields["_COMM"]
		if pid, err := strconv.Atoi(fields["_PID"]); err == nil && pid > 0 {
			e.PID = pid
		}
		e.Root = fields["_UID"] == "0"
	}
	return e
}

// Verdict is how a filter classified one line.
type Verdict uint8

const (
	// Missed: the line is not one the filter knows (another program's,
	// or an unknown message).
	Missed Verdict = iota
	// Ignored: the filter knows the line and it is not a failure: a
	// success, a connection's helper line, a match of an ignore regex, a
	// failure held until its connection's address is known.
	Ignored
	// Matched: the line produced at least one failure.
	Matched
)

func (v Verdict) String() string {
	switch v {
	case Ignored:
		return "ignored"
	case Matched:
		return "matched"
	}
	return "missed"
}

// Result is what one line meant. The caller owns it and passes it to
// Process again after Reset, so that a line costs no allocation.
type Result struct {
	Verdict   Verdict
	Failures  []Failure
	Successes []Success
}

// Reset empties r for the next line, keeping its storage.
func (r *Result) Reset() {
	r.Verdict = Missed
	r.Failures = r.Failures[:0]
	r.Successes = r.Successes[:0]
}

func (r *Result) fail(f Failure) {
	if f.Attempts < 1 {
		f.Attempts = 1
	}
	r.Failures = append(r.Failures, f)
	r.Verdict = Matched
}

func (r *Result) ignore() {
	if r.Verdict == Missed {
		r.Verdict = Ignored
	}
}

// Filter reads the meaning of log lines for one service. A Filter may keep
// state between lines (sshd follows connections), so one Filter serves
// one stream of lines and is not safe for concurrent use.
type Filter interface {
	// Name is the filter's name, e.g. "sshd"; failures carry it as
	// Service.
	Name() string
	// Mode is the mode the filter was built with ("normal" by default).
	Mode() string
	// Process reads one line and appends what it found to r.
	Process(e Entry, r *Result)
}

// Options tune a filter. The zero value is ready to use.
type Options struct {
	// Location is the zone of timestamps that carry none (syslog's
	// "Nov 21 05:42:36", nginx's error log); nil is time.Local.
	Location *time.Location
	// Now is the clock that dates a syslog timestamp without a year: the
	// year is the one that puts the line closest before Now (a day ahead
	// is tolerated, for skew). Nil is time.Now.
	Now func() time.Time
	// MaxConns bounds the connections sshd follows at once (rounded up
	// to a power of two); past it, old connections are forgotten. Zero is
	// DefaultMaxConns.
	MaxConns int
	// MaxLine is the longest line read; a longer one is missed whole
	// rather than cut, since a cut can leave an injected address behind.
	// Zero is DefaultMaxLine.
	MaxLine int
}

// Defaults for Options.
const (
	DefaultMaxConns = 16384
	DefaultMaxLine  = 16 << 10
)

func (o Options) withDefaults() Options {
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	return o
}

// builtin describes a built-in filter.
type builtin struct {
	modes []string // first is the default
	new   func(mode string, o Options) Filter
}

var builtins = map[string]builtin{}

// Builtins returns the names of the built-in filters, in a stable order.
func Builtins() []string {
	return []string{"sshd", "nginx-http-auth", "nginx-limit-req", "nginx-botsearch", "nginx-bad-request", "nginx-forbidden", "traefik-auth", "caddy-auth", "gateway"}
}

// Modes returns the modes of built-in filter name, the default first.
func Modes(name string) ([]string, bool) {
	b, ok := builtins[name]
	if !ok {
		return nil, false
	}
	return append([]string(nil), b.modes...), true
}

// New builds built-in filter name in mode ("" is the filter's default).
func New(name, mode string, o Options) (Filter, error) {
	b, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("unknown filter %q: expected one of %v or a filter defined under guard.filters", name, Builtins())
	}
	if mode == "" {
		mode = b.modes[0]
	}
	known := false
	for _, m := range b.modes {
		known = known || m == mode
	}
	if !known {
		return nil, fmt.Errorf("filter %s has no mode %q: expected one of %v", name, mode, b.modes)
	}
	return b.new(mode, o.withDefaults()), nil
}
