package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Service is what answers on one open port.
type Service struct {
	Proto   string `json:"proto"`
	Addr    string `json:"addr"`
	Port    uint16 `json:"port"`
	Name    string `json:"service"` // ssh, http, https, tls, redis, postgresql, mysql, mongodb, memcached, elasticsearch, docker, etcd, smtp, ftp, dns, ntp, snmp, wireguard, quic, unknown
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	Banner  string `json:"banner,omitempty"`
	// Took is how long examining the port took.
	Took time.Duration `json:"took_ns"`

	SSH       *SSHInfo       `json:"ssh,omitempty"`
	TLS       *TLSInfo       `json:"tls,omitempty"`
	HTTP      *HTTPInfo      `json:"http,omitempty"`
	Datastore *DatastoreInfo `json:"datastore,omitempty"`
}

// DatastoreInfo says whether a datastore let an anonymous client in.
type DatastoreInfo struct {
	// Unauthenticated: it answered a data command with no credential.
	Unauthenticated bool   `json:"unauthenticated"`
	Evidence        string `json:"evidence"`
}

// conn opens a connection to ap whose reads and writes end by timeout.
func (p *Prober) conn(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.ioTimeout())
	defer cancel()
	c, err := p.dial()(ctx, "tcp", ap.String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(p.ioTimeout()))
	return c, nil
}

// exchange sends req (nil: nothing) and reads the answer: up to limit
// bytes, until frame says it is whole, the server closes or stops sending
// for a moment, or the deadline. It never fails on a short or absent
// answer; it returns what came.
func (p *Prober) exchange(ctx context.Context, ap netip.AddrPort, req []byte, wait time.Duration, limit int, frame frameFunc) ([]byte, error) {
	c, err := p.conn(ctx, ap)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if req != nil {
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
	}
	return readAnswer(c, wait, limit, frame), nil
}

// readAnswer reads until limit bytes, EOF, a whole message (frame; nil:
// none is known), or no new byte within wait (the first byte may take up
// to wait; later ones a quarter of it).
func readAnswer(c net.Conn, wait time.Duration, limit int, frame frameFunc) []byte {
	buf := make([]byte, 0, min(limit, 4096))
	chunk := make([]byte, 4096)
	deadline := time.Now().Add(wait)
	for len(buf) < limit {
		c.SetReadDeadline(deadline)
		n, err := c.Read(chunk[:min(len(chunk), limit-len(buf))])
		buf = append(buf, chunk[:n]...)
		if err != nil || (n > 0 && frame != nil && frame(buf)) {
			break
		}
		deadline = time.Now().Add(wait / 4)
	}
	return buf
}

// identify finds what answers on an open TCP port. The port's usual
// service is asked first, alone: on its own port it nearly always
// answers, and nothing else is sent. Otherwise every candidate is asked
// at once, each on its own connection with its own deadline (a greeting
// waited for, TLS, HTTP, the datastores'), and the first conclusive
// answer stops the rest, so an unknown port costs its quickest answer,
// not the sum of every question's silence; the protocol that answered is
// then examined in depth.
func (p *Prober) identify(ctx context.Context, ap netip.AddrPort) (s Service) {
	t0 := time.Now()
	s = Service{Proto: "tcp", Addr: ap.Addr().String(), Port: ap.Port(), Name: "unknown"}
	defer func() { s.Took = time.Since(t0) }()
	hint := portHints[ap.Port()]
	if speaksFirst[hint] {
		if p.banner(ctx, ap, &s) {
			return s
		}
	} else if hint != "" && p.try(ctx, ap, hint, &s) {
		return s
	}
	order := []string{"tls", "http", "redis", "postgresql", "mongodb", "memcached"}
	if hint != "" && !speaksFirst[hint] {
		order = slices.DeleteFunc(order, func(k string) bool { return k == hint })
	}
	// Every question on its own connection, under its own context: a
	// conclusive answer cancels the questions it makes moot, so a port
	// costs its quickest conclusive answer, not its slowest silence.
	type answer struct {
		i  int // index in order; -1: the greeting
		ok bool
	}
	var (
		ch      = make(chan answer, len(order)+1)
		cancels = make([]context.CancelFunc, len(order))
		greet   = s
		pending = len(order)
	)
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	if hint == "" {
		pending++
		go func() { ch <- answer{-1, p.banner(bctx, ap, &greet)} }()
	}
	for i, kind := range order {
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cancels[i] = cancel
		go func() { ch <- answer{i, p.detect(dctx, ap, kind)} }()
	}
	found := make([]bool, len(order))
	for ; pending > 0; pending-- {
		a := <-ch
		if !a.ok {
			continue
		}
		if a.i < 0 {
			if !slices.Contains(found, true) {
				// It spoke first: what it said is the answer.
				return greet
			}
			continue
		}
		found[a.i] = true
		// Each reader is strict, so a yes is conclusive, except that an
		// HTTPS server may answer plain HTTP with an error page: HTTP
		// waits for TLS's answer, everything else stops now.
		bcancel()
		for j := range order {
			if j != a.i && !(order[a.i] == "http" && order[j] == "tls") {
				cancels[j]()
			}
		}
	}
	for i, kind := range order {
		if found[i] && ctx.Err() == nil && p.try(ctx, ap, kind, &s) {
			return s
		}
	}
	return s
}

// banner waits for a greeting; true when the server spoke (s then says
// what it is, when known).
func (p *Prober) banner(ctx context.Context, ap netip.AddrPort, s *Service) bool {
	b, err := p.exchange(ctx, ap, nil, p.bannerWait(), 4096, bannerFrame)
	if err != nil || len(b) == 0 {
		return false
	}
	bn := ParseBanner(b)
	s.Banner = bn.Line
	if bn.Service != "" {
		s.Name, s.Product, s.Version = bn.Service, bn.Product, bn.Version
		switch bn.Service {
		case "ssh":
			s.SSH = p.probeSSH(ctx, ap)
		case "mysql":
			p.mysql(s, b)
		}
	}
	// It spoke, but maybe not a protocol known here: nothing sent would
	// tell more.
	return true
}

// detect asks the one cheap question that tells whether the port speaks
// kind: a TLS handshake, GET /, a datastore's greeting.
func (p *Prober) detect(ctx context.Context, ap netip.AddrPort, kind string) bool {
	switch kind {
	case "tls":
		_, err := p.handshake(ctx, ap, &tls.Config{})
		return err == nil || isTLSAlert(err) || p.handshakeAnyName(ctx, ap)
	case "http":
		host := ""
		if len(p.Names) > 0 {
			host = p.Names[0]
		}
		a, _ := p.get(ctx, p.httpClient(ap), "http", ap, host, "/", 1)
		return a.Status != 0
	case "redis":
		b, err := p.exchange(ctx, ap, []byte("PING\r\n"), p.bannerWait(), 512, respFrame)
		_, ok := ParseRedisReply(b)
		return err == nil && ok
	case "postgresql":
		b, err := p.exchange(ctx, ap, pgSSLRequest, p.bannerWait(), 16, anyFrame)
		return err == nil && len(b) == 1 && (b[0] == 'S' || b[0] == 'N')
	case "mongodb":
		b, err := p.exchange(ctx, ap, mongoCommand("hello", "admin"), p.bannerWait(), 64<<10, mongoFrame)
		_, ok := ParseMongoReply(b)
		return err == nil && ok
	case "memcached":
		b, err := p.exchange(ctx, ap, []byte("stats\r\n"), p.bannerWait(), 16<<10, memcachedFrame)
		_, ok := ParseMemcachedStats(b)
		return err == nil && ok
	}
	return false
}

// pgSSLRequest: every PostgreSQL answers it with one byte.
var pgSSLRequest = []byte{0, 0, 0, 8, 4, 210, 22, 47}

// try runs one protocol's probe; true when the port speaks it.
func (p *Prober) try(ctx context.Context, ap netip.AddrPort, kind string, s *Service) bool {
	switch kind {
	case "tls":
		info := p.probeTLS(ctx, ap)
		if info == nil {
			return false
		}
		s.Name, s.TLS = "tls", info
		if h := p.probeHTTP(ctx, ap, true); h != nil {
			s.Name, s.HTTP = "https", h
			p.httpProduct(ctx, ap, s, true)
		}
		return true
	case "http", "docker", "etcd", "elasticsearch":
		h := p.probeHTTP(ctx, ap, false)
		if h == nil {
			return false
		}
		s.Name, s.HTTP = "http", h
		p.httpProduct(ctx, ap, s, false)
		return true
	case "redis":
		b, err := p.exchange(ctx, ap, []byte("PING\r\n"), p.bannerWait(), 512, respFrame)
		if err != nil {
			return false
		}
		r, ok := ParseRedisReply(b)
		if !ok {
			return false
		}
		s.Name, s.Product, s.Banner = "redis", "Redis", r.Text
		ds := &DatastoreInfo{Evidence: "PING → " + r.Text}
		if r.Open {
			ds.Unauthenticated = true
			if info, err := p.exchange(ctx, ap, []byte("INFO server\r\n"), p.ioTimeout(), 16<<10, respFrame); err == nil {
				if v := RedisInfo(info); v != "" {
					s.Version = v
					ds.Evidence += "; INFO server → redis_version:" + v
				}
			}
		}
		s.Datastore = ds
		return true
	case "postgresql":
		// SSLRequest first: every PostgreSQL answers it with one byte.
		b, err := p.exchange(ctx, ap, pgSSLRequest, p.bannerWait(), 16, anyFrame)
		if err != nil || len(b) != 1 || (b[0] != 'S' && b[0] != 'N') {
			return false
		}
		s.Name, s.Product = "postgresql", "PostgreSQL"
		ans, err := p.exchange(ctx, ap, postgresStartup("postgres", "postgres"), p.ioTimeout(), 4096, pgFrame)
		if err == nil {
			if r, ok := ParsePostgresReply(ans); ok {
				ds := &DatastoreInfo{}
				switch r.Auth {
				case 0:
					ds.Unauthenticated = true
					ds.Evidence = "startup as user postgres → AuthenticationOk (no password asked: trust)"
				case -1:
					ds.Evidence = "startup as user postgres → error: " + r.Error
				default:
					ds.Evidence = "startup as user postgres → " + pgAuthName(r.Auth) + " requested"
				}
				s.Datastore = ds
			}
		}
		return true
	case "mongodb":
		// hello answers anyone (it is how drivers connect); listDatabases
		// answers only without authentication.
		b, err := p.exchange(ctx, ap, mongoCommand("hello", "admin"), p.bannerWait(), 64<<10, mongoFrame)
		if err != nil {
			return false
		}
		if _, ok := ParseMongoReply(b); !ok {
			return false
		}
		s.Name, s.Product = "mongodb", "MongoDB"
		b, err = p.exchange(ctx, ap, mongoCommand("listDatabases", "admin"), p.bannerWait(), 64<<10, mongoFrame)
		r, ok := ParseMongoReply(b)
		if err != nil || !ok {
			return true
		}
		ds := &DatastoreInfo{}
		if r.OK {
			ds.Unauthenticated = true
			ds.Evidence = "listDatabases → ok (no authentication)"
		} else {
			ds.Evidence = "listDatabases → " + r.Error
		}
		s.Datastore = ds
		return true
	case "dns":
		// DNS over TCP: the UDP query with a two-byte length in front.
		q := dnsQuery()
		b, err := p.exchange(ctx, ap, append([]byte{byte(len(q) >> 8), byte(len(q))}, q...), p.bannerWait(), 4096, lengthFrame16)
		if err != nil || len(b) < 2 {
			return false
		}
		what, ok := parseDNSAnswer(b[2:])
		if !ok {
			return false
		}
		s.Name, s.Banner = "dns", what
		return true
	case "memcached":
		b, err := p.exchange(ctx, ap, []byte("stats\r\n"), p.bannerWait(), 16<<10, memcachedFrame)
		if err != nil {
			return false
		}
		v, ok := ParseMemcachedStats(b)
		if !ok {
			return false
		}
		s.Name, s.Product, s.Version = "memcached", "memcached", v
		s.Datastore = &DatastoreInfo{Unauthenticated: true, Evidence: "stats → STAT lines (memcached has no authentication by default)"}
		return true
	}
	return false
}

func (p *Prober) mysql(s *Service, greeting []byte) {
	g, _ := ParseMySQLGreeting(greeting)
	s.Product, s.Version = g.Product, g.Version
	if g.Error != "" {
		s.Banner = "error: " + g.Error
	}
	// Whether an account without a password exists cannot be learned
	// without trying one: moat sends no credential, so the greeting is
	// all it reports.
}

func pgAuthName(code int) string {
	switch code {
	case 3:
		return "cleartext password"
	case 5:
		return "MD5 password"
	case 10:
		return "SCRAM (SASL)"
	}
	return "authentication"
}

// postgresStartup is a protocol 3.0 StartupMessage: a user name is no
// credential.
func postgresStartup(user, db string) []byte {
	var body bytes.Buffer
	binary.Write(&body, binary.BigEndian, uint32(196608))
	for _, kv := range [][2]string{{"user", user}, {"database", db}, {"application_name", "moat-probe"}} {
		body.WriteString(kv[0])
		body.WriteByte(0)
		body.WriteString(kv[1])
		body.WriteByte(0)
	}
	body.WriteByte(0)
	out := make([]byte, 4, 4+body.Len())
	binary.BigEndian.PutUint32(out, uint32(4+body.Len()))
	return append(out, body.Bytes()...)
}

// mongoCommand is an OP_MSG running {cmd: 1, $db: db}.
func mongoCommand(cmd, db string) []byte {
	var doc bytes.Buffer
	doc.Write([]byte{0, 0, 0, 0})
	doc.WriteByte(0x10)
	doc.WriteString(cmd)
	doc.WriteByte(0)
	binary.Write(&doc, binary.LittleEndian, int32(1))
	doc.WriteByte(0x02)
	doc.WriteString("$db")
	doc.WriteByte(0)
	binary.Write(&doc, binary.LittleEndian, int32(len(db)+1))
	doc.WriteString(db)
	doc.WriteByte(0)
	doc.WriteByte(0)
	d := doc.Bytes()
	binary.LittleEndian.PutUint32(d, uint32(len(d)))
	msg := make([]byte, 16, 16+5+len(d))
	binary.LittleEndian.PutUint32(msg[0:], uint32(16+5+len(d)))
	binary.LittleEndian.PutUint32(msg[4:], 1)
	binary.LittleEndian.PutUint32(msg[12:], 2013)
	msg = append(msg, 0, 0, 0, 0, 0) // flag bits, section kind 0
	return append(msg, d...)
}

// portHints name the service a port usually carries: it is tried first.
var portHints = map[uint16]string{
	21: "ftp", 22: "ssh", 53: "dns", 25: "smtp", 110: "pop3", 143: "imap", 465: "tls", 587: "smtp", 993: "tls", 995: "tls",
	80: "http", 443: "tls", 8080: "http", 8443: "tls", 3306: "mysql", 5432: "postgresql", 6379: "redis",
	27017: "mongodb", 11211: "memcached", 9200: "elasticsearch", 2375: "docker", 2376: "tls", 2379: "etcd",
}

// speaksFirst are services whose server sends a greeting unasked.
var speaksFirst = map[string]bool{"ftp": true, "ssh": true, "smtp": true, "pop3": true, "imap": true, "mysql": true}
