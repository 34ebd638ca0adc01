package ruleset

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// render writes one statement of a rule roughly as nft would list it; it
// is for people reading reports, not for feeding back to nft.
func render(k string, v json.RawMessage) string {
	switch k {
	case "match":
		var m struct {
			Op    string          `json:"op"`
			Left  json.RawMessage `json:"left"`
			Right json.RawMessage `json:"right"`
		}
		_ = json.Unmarshal(v, &m)
		left := renderExpr(m.Left, false)
		quote := strings.HasSuffix(left, "ifname") || left == "iif" || left == "oif"
		op := " "
		if m.Op == "==" && strings.Contains(left, " & ") {
			op = " == "
		} else if m.Op != "==" && m.Op != "in" && m.Op != "" {
			op = " " + m.Op + " "
		}
		return left + op + renderExpr(m.Right, quote)
	case "counter", "accept", "drop", "return", "continue", "masquerade", "notrack", "queue":
		return k
	case "reject":
		return "reject"
	case "jump", "goto":
		var t struct{ Target string }
		_ = json.Unmarshal(v, &t)
		return k + " " + t.Target
	case "log":
		var l struct{ Prefix string }
		_ = json.Unmarshal(v, &l)
		if l.Prefix != "" {
			return "log prefix " + strconv.Quote(l.Prefix)
		}
		return "log"
	case "limit":
		var l struct {
			Rate float64
			Per  string
			Inv  bool
		}
		_ = json.Unmarshal(v, &l)
		return fmt.Sprintf("limit rate %s%g/%s", over(l.Inv), l.Rate, l.Per)
	case "quota":
		var q struct {
			Val     float64 `json:"val"`
			ValUnit string  `json:"val_unit"`
			Inv     bool    `json:"inv"`
		}
		_ = json.Unmarshal(v, &q)
		return fmt.Sprintf("quota %s%g %s", over(q.Inv), q.Val, q.ValUnit)
	case "ct count":
		var c struct {
			Val float64
			Inv bool
		}
		_ = json.Unmarshal(v, &c)
		return fmt.Sprintf("ct count %s%g", over(c.Inv), c.Val)
	case "dnat", "snat":
		var n struct {
			Addr json.RawMessage
			Port json.RawMessage
		}
		_ = json.Unmarshal(v, &n)
		addr := renderExpr(n.Addr, false)
		if len(n.Port) > 0 {
			if strings.Contains(addr, ":") {
				addr = "[" + addr + "]"
			}
			addr += ":" + renderExpr(n.Port, false)
		}
		s := k + " to " + addr
		return s
	case "redirect":
		var n struct{ Port json.RawMessage }
		_ = json.Unmarshal(v, &n)
		if len(n.Port) > 0 {
			return "redirect to :" + renderExpr(n.Port, false)
		}
		return "redirect"
	case "vmap":
		var m struct {
			Key  json.RawMessage `json:"key"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(v, &m)
		return renderExpr(m.Key, false) + " vmap " + renderExpr(m.Data, false)
	case "xt":
		var x struct{ Type, Name string }
		_ = json.Unmarshal(v, &x)
		return "xt " + x.Type + " " + x.Name
	case "set":
		var s struct {
			Op   string          `json:"op"`
			Elem json.RawMessage `json:"elem"`
			Set  string          `json:"set"`
			Stmt []json.RawMessage
		}
		_ = json.Unmarshal(v, &s)
		inner := renderExpr(s.Elem, false)
		for _, st := range s.Stmt {
			if k, v, ok := single(st); ok && k != "set" && k != "meter" {
				inner += " " + render(k, v)
			}
		}
		return s.Op + " " + s.Set + " { " + inner + " }"
	}
	return k
}

func over(inv bool) string {
	if inv {
		return "over "
	}
	return ""
}

// renderExpr writes an expression or value; quote puts names in quotes, as
// nft does for interface names.
func renderExpr(raw json.RawMessage, quote bool) string { return renderAt(raw, quote, 0) }

// maxNesting bounds how deep expressions are followed; nft's own are a few
// levels deep, hostile input could be thousands.
const maxNesting = 16

func renderAt(raw json.RawMessage, quote bool, depth int) string {
	if depth > maxNesting {
		return "…"
	}
	depth++
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if quote && !strings.HasPrefix(s, "@") {
			return strconv.Quote(s)
		}
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if b {
			return "exists"
		}
		return "missing"
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		return joinExprs(list, ",", quote, depth)
	}
	k, v, ok := single(raw)
	if !ok {
		return "…"
	}
	switch k {
	case "payload":
		var p struct {
			Protocol, Field string
			Base            string
			Offset, Len     int
		}
		_ = json.Unmarshal(v, &p)
		if p.Protocol == "" {
			return fmt.Sprintf("@%s,%d,%d", p.Base, p.Offset, p.Len)
		}
		return p.Protocol + " " + p.Field
	case "meta":
		var m struct{ Key string }
		_ = json.Unmarshal(v, &m)
		switch m.Key {
		case "iif", "oif", "iifname", "oifname":
			return m.Key
		}
		return "meta " + m.Key
	case "ct":
		var c struct{ Key, Dir string }
		_ = json.Unmarshal(v, &c)
		if c.Dir != "" {
			return "ct " + c.Dir + " " + c.Key
		}
		return "ct " + c.Key
	case "fib":
		var f struct {
			Result string
			Flags  json.RawMessage
		}
		_ = json.Unmarshal(v, &f)
		return "fib " + strings.Join(stringList(f.Flags), " . ") + " " + f.Result
	case "set":
		var members []json.RawMessage
		_ = json.Unmarshal(v, &members)
		return "{ " + joinExprs(members, ", ", quote, depth) + " }"
	case "prefix":
		var p struct {
			Addr string
			Len  int
		}
		_ = json.Unmarshal(v, &p)
		return fmt.Sprintf("%s/%d", p.Addr, p.Len)
	case "range":
		var r []json.RawMessage
		_ = json.Unmarshal(v, &r)
		return joinExprs(r, "-", quote, depth)
	case "concat":
		var parts []json.RawMessage
		_ = json.Unmarshal(v, &parts)
		return joinExprs(parts, " . ", quote, depth)
	case "&", "|", "^", "<<", ">>":
		var ops []json.RawMessage
		_ = json.Unmarshal(v, &ops)
		out := make([]string, 0, len(ops))
		for _, op := range ops {
			var flags []json.RawMessage
			if json.Unmarshal(op, &flags) == nil && len(flags) > 1 {
				out = append(out, "("+joinExprs(flags, " | ", quote, depth)+")") // a flag list ORed
				continue
			}
			out = append(out, renderAt(op, quote, depth))
		}
		return strings.Join(out, " "+k+" ")
	case "elem":
		var e struct {
			Val json.RawMessage `json:"val"`
		}
		_ = json.Unmarshal(v, &e)
		return renderAt(e.Val, quote, depth)
	case "accept", "drop", "return", "continue", "jump", "goto":
		return render(k, v)
	}
	// socket, osf, numgen, rt, exthdr, ...: the name and its key if any.
	var o struct{ Key string }
	_ = json.Unmarshal(v, &o)
	return strings.TrimSpace(k + " " + o.Key)
}

func joinExprs(list []json.RawMessage, sep string, quote bool, depth int) string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		// A map element is a [key, value] pair.
		var pair []json.RawMessage
		if json.Unmarshal(x, &pair) == nil && len(pair) == 2 {
			out = append(out, renderAt(pair[0], quote, depth)+" : "+renderAt(pair[1], quote, depth))
			continue
		}
		out = append(out, renderAt(x, quote, depth))
	}
	return strings.Join(out, sep)
}

// clip bounds a rendering: rules can carry huge anonymous sets.
func clip(s string) string {
	const max = 240
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
