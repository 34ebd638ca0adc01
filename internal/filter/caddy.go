package filter

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// caddy reads Caddy's JSON access log for 401 answers. Modes, as
// traefik-auth's: normal counts a 401 to a request that carried
// credentials (an Authorization header, which Caddy logs redacted), ddos
// a 401 without (a browser's first request gets one too), aggressive
// both. The address is request.client_ip (Caddy's own reading, which
// honours trusted_proxies), else request.remote_ip; JSON escaping keeps
// the client's headers and URI out of those fields.
type caddy struct {
	mode string
	o    Options
	in   interner
}

func init() {
	builtins["caddy-auth"] = builtin{
		modes: []string{"normal", "ddos", "aggressive"},
		new: func(mode string, o Options) Filter {
			return &caddy{mode: mode, o: o}
		},
	}
}

func (f *caddy) Name() string { return "caddy-auth" }
func (f *caddy) Mode() string { return f.mode }

var mCaddy = []byte(`"status":401`)

// caddyJSON is the part of a Caddy access log entry moat reads.
type caddyJSON struct {
	TS      json.RawMessage `json:"ts"`
	Status  int             `json:"status"`
	UserID  string          `json:"user_id"`
	Request struct {
		RemoteIP string `json:"remote_ip"`
		ClientIP string `json:"client_ip"`
		Headers  struct {
			Authorization []string `json:"Authorization"`
		} `json:"headers"`
	} `json:"request"`
}

// Process reads one line.
func (f *caddy) Process(e Entry, r *Result) {
	b := e.Text
	if e.Truncated || len(b) > f.o.MaxLine || len(b) == 0 || b[0] != '{' || index(b, mCaddy) < 0 {
		return
	}
	var j caddyJSON
	if json.Unmarshal(b, &j) != nil || j.Status != 401 {
		return
	}
	creds := len(j.Request.Headers.Authorization) > 0 || j.UserID != ""
	switch {
	case f.mode == "aggressive", creds && f.mode == "normal", !creds && f.mode == "ddos":
	default:
		r.ignore()
		return
	}
	t := caddyTime(j.TS)
	if t.IsZero() {
		t = e.Time
	}
	if t.IsZero() {
		t = f.o.Now()
	}
	fl := Failure{Time: t.In(f.o.Location), Kind: KindHTTPAuth, Attempts: 1, User: f.in.str([]byte(j.UserID)), Service: "caddy-auth"}
	host := j.Request.ClientIP
	if host == "" {
		host = j.Request.RemoteIP
	}
	if a, ok := addrTok([]byte(host)); ok {
		fl.Addr = a
	} else {
		fl.Host = display([]byte(host), 64)
	}
	r.fail(fl)
}

// caddyTime reads "ts": Unix seconds as a float (Caddy's default) or an
// RFC 3339 string (time_format iso8601 and friends).
func caddyTime(ts json.RawMessage) time.Time {
	if len(ts) == 0 {
		return time.Time{}
	}
	if ts[0] == '"' {
		var s string
		if json.Unmarshal(ts, &s) == nil {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t
			}
		}
		return time.Time{}
	}
	v, err := strconv.ParseFloat(string(ts), 64)
	if err != nil || v <= 0 || v > 1<<40 || math.IsNaN(v) {
		return time.Time{}
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9))
}
