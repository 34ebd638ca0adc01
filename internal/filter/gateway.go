package filter

import (
	"encoding/json"
	"net/netip"
	"time"
)

// The gateway feeds failures to the jails in process, as Failures built
// by GatewayFailure. It may also write them as JSON lines (one
// GatewayEvent per line, AppendGatewayEvent), which the "gateway" filter
// reads back: for replays, and for a gateway run apart from the guard.

// GatewayEvent is one line of the gateway's failure log:
//
//	{"time":"2026-11-21T05:42:36.123Z","event":"failure","addr":"192.0.2.7","kind":"http-auth","user":"admin","attempts":1}
type GatewayEvent struct {
	Time     time.Time `json:"time"`
	Event    string    `json:"event"` // always "failure"
	Addr     string    `json:"addr"`
	Kind     Kind      `json:"kind"`
	User     string    `json:"user,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
}

// GatewayFailure builds the Failure the gateway hands the jails for a
// peer it saw fail.
func GatewayFailure(addr netip.Addr, t time.Time, kind Kind, user string) Failure {
	return Failure{Addr: addr.Unmap(), Time: t, Kind: kind, Attempts: 1, User: display([]byte(user), maxUser), Service: "gateway"}
}

// AppendGatewayEvent appends f as one JSON line (with its newline).
func AppendGatewayEvent(dst []byte, f Failure) []byte {
	ev := GatewayEvent{Time: f.Time.UTC(), Event: "failure", Kind: f.Kind, User: f.User, Attempts: f.Attempts}
	if f.Addr.IsValid() {
		ev.Addr = f.Addr.String()
	}
	b, _ := json.Marshal(ev) // cannot fail: plain fields
	return append(append(dst, b...), '\n')
}

type gateway struct {
	o Options
}

func init() {
	builtins["gateway"] = builtin{
		modes: []string{"normal"},
		new:   func(mode string, o Options) Filter { return &gateway{o: o} },
	}
}

func (g *gateway) Name() string { return "gateway" }
func (g *gateway) Mode() string { return "normal" }

var mGatewayEvent = []byte(`"event":"failure"`)

// gatewayKinds are the kinds the gateway reports.
var gatewayKinds = map[Kind]bool{KindHTTPAuth: true, KindLimitReq: true, KindBotSearch: true, KindBadRequest: true, KindForbidden: true, KindTLS: true, KindHoneypot: true}

// Process reads one line.
func (g *gateway) Process(e Entry, r *Result) {
	b := e.Text
	if e.Truncated || len(b) > g.o.MaxLine || len(b) == 0 || b[0] != '{' || index(b, mGatewayEvent) < 0 {
		return
	}
	var ev GatewayEvent
	if json.Unmarshal(b, &ev) != nil || ev.Event != "failure" || !gatewayKinds[ev.Kind] {
		return
	}
	t := ev.Time
	if t.IsZero() {
		t = e.Time
	}
	if t.IsZero() {
		t = g.o.Now()
	}
	f := Failure{Time: t.In(g.o.Location), Kind: ev.Kind, Attempts: max(ev.Attempts, 1), User: display([]byte(ev.User), maxUser), Service: "gateway"}
	if a, ok := addrTok([]byte(ev.Addr)); ok {
		f.Addr = a
	} else {
		f.Host = display([]byte(ev.Addr), 64)
	}
	if f.Attempts > 1000 {
		f.Attempts = 1000
	}
	r.fail(f)
}
