package filter

import (
	"encoding/json"
	"time"
)

// traefik reads Traefik's access log, in the common log format Traefik
// writes ("ADDR - USER [STAMP] "REQUEST" STATUS SIZE "REFERER" "UA" N
// "ROUTER" "URL" Dms") or as JSON, for 401 answers. Modes, as fail2ban's:
// normal counts a 401 to a request that carried a user name (credentials
// tried and refused), ddos a 401 without one (a browser's first request
// gets one too, so only for floods), aggressive both.
//
// The address is the line's first field (ClientHost in JSON), which
// Traefik writes itself. Traefik does not escape quotes in what it logs,
// so a client can make its own line hard to read; it can never move the
// address.
type traefik struct {
	mode string
	o    Options
	clk  clock
	in   interner
}

func init() {
	builtins["traefik-auth"] = builtin{
		modes: []string{"normal", "ddos", "aggressive"},
		new: func(mode string, o Options) Filter {
			return &traefik{mode: mode, o: o, clk: newClock(o)}
		},
	}
}

func (f *traefik) Name() string { return "traefik-auth" }
func (f *traefik) Mode() string { return f.mode }

var (
	m401Quoted = []byte(`" 401 `)
	mTraefik   = []byte(`"DownstreamStatus":401`)
)

// Process reads one line.
func (f *traefik) Process(e Entry, r *Result) {
	if e.Truncated || len(e.Text) > f.o.MaxLine || !clean(e.Text) {
		return
	}
	b := e.Text
	if len(b) > 0 && b[0] == '{' {
		f.json(e, r)
		return
	}
	var l ngxLine
	if !f.clk.accessLine(b, &l) {
		return
	}
	// Without escaping, the status may be read wrong: any reading of 401
	// counts (the address is fixed, so the client can only count
	// itself).
	if l.status != 401 && index(b[len(l.addr):], m401Quoted) < 0 {
		r.ignore()
		return
	}
	f.judge(r, l.addr, l.user, l.t, e.Time)
}

// judge applies the mode to a 401 for addr with user name user ("-" or
// empty when none was sent).
func (f *traefik) judge(r *Result, addr, user []byte, t, fallback time.Time) {
	named := len(user) > 0 && string(user) != "-"
	switch {
	case f.mode == "aggressive", named && f.mode == "normal", !named && f.mode == "ddos":
	default:
		r.ignore()
		return
	}
	if t.IsZero() {
		t = fallback
	}
	if t.IsZero() {
		t = f.o.Now()
	}
	fl := Failure{Time: t, Kind: KindHTTPAuth, Attempts: 1, Service: "traefik-auth"}
	if named {
		fl.User = f.in.str(user)
	}
	if a, ok := addrTok(addr); ok {
		fl.Addr = a
	} else {
		fl.Host = display(addr, 64)
	}
	r.fail(fl)
}

// traefikJSON is the part of Traefik's JSON access log moat reads.
type traefikJSON struct {
	ClientHost       string `json:"ClientHost"`
	ClientUsername   string `json:"ClientUsername"`
	DownstreamStatus int    `json:"DownstreamStatus"`
	StartUTC         string `json:"StartUTC"`
	Time             string `json:"time"`
}

func (f *traefik) json(e Entry, r *Result) {
	if index(e.Text, mTraefik) < 0 {
		return
	}
	var j traefikJSON
	if json.Unmarshal(e.Text, &j) != nil || j.DownstreamStatus != 401 {
		return
	}
	var t time.Time
	for _, s := range []string{j.StartUTC, j.Time} {
		if p, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t = p.In(f.clk.loc)
			break
		}
	}
	f.judge(r, []byte(j.ClientHost), []byte(j.ClientUsername), t, e.Time)
}
