package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
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

// exchange sends req (nil: nothing) and reads the answer: up to max bytes,
// until the server stops sending for a moment, closes, or the deadline.
// It never fails on a short or absent answer; it returns what came.
func (p *Prober) exchange(ctx context.Context, ap netip.AddrPort, req []byte, wait time.Duration, limit int) ([]byte, error) {
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
	return readAnswer(c, wait, limit), nil
}

// readAnswer reads until limit bytes, EOF, or no new byte within wait
// (the first byte may take up to wait; later ones a quarter of it).
func readAnswer(c net.Conn, wait time.Duration, limit int) []byte {
	buf := make([]byte, 0, min(limit, 4096))
	chunk := make([]byte, 4096)
	deadline := time.Now().Add(wait)
	for len(buf) < limit {
		c.SetReadDeadline(deadline)
		n, err := c.Read(chunk[:min(len(chunk), limit-len(buf))])
		buf = append(buf, chunk[:n]...)
		if err != nil {
			break
		}
		deadline = time.Now().Add(wait / 4)
	}
	return buf
}

// identify finds what answers on an open TCP port: first what it says
// unasked, then TLS, HTTP and the datastores' greetings, most likely first
// for the port number.
func (p *Prober) identify(ctx context.Context, ap netip.AddrPort) Service {
	s := Service{Proto: "tcp", Addr: ap.Addr().String(), Port: ap.Port(), Name: "unknown"}
	hint := portHints[ap.Port()]
	// Servers that speak first: SSH, MySQL, SMTP, FTP, POP3, IMAP. Skip
	// the wait on ports whose usual service waits for the client.
	if hint == "" || speaksFirst[hint] {
		if b, err := p.exchange(ctx, ap, nil, p.bannerWait(), 4096); err == nil && len(b) > 0 {
			bn := ParseBanner(b)
			s.Banner = bn.Line
			if bn.Service != "" {
				s.Name, s.Product, s.Version = bn.Service, bn.Product, bn.Version
				switch bn.Service {
				case "ssh":
					s.SSH = p.probeSSH(ctx, ap)
				case "mysql":
					p.mysql(&s, b)
				}
				return s
			}
			// It spoke, but not a protocol known here.
			return s
		}
	}
	order := []string{"tls", "http", "redis", "postgresql", "mongodb", "memcached"}
	if hint != "" && !speaksFirst[hint] {
		order = append([]string{hint}, order...)
	}
	tried := map[string]bool{}
	for _, kind := range order {
		if tried[kind] || ctx.Err() != nil {
			continue
		}
		tried[kind] = true
		if p.try(ctx, ap, kind, &s) {
			return s
		}
	}
	return s
}

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
		b, err := p.exchange(ctx, ap, []byte("PING\r\n"), p.bannerWait(), 512)
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
			if info, err := p.exchange(ctx, ap, []byte("INFO server\r\n"), p.ioTimeout(), 16<<10); err == nil {
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
		b, err := p.exchange(ctx, ap, []byte{0, 0, 0, 8, 4, 210, 22, 47}, p.bannerWait(), 16)
		if err != nil || len(b) != 1 || (b[0] != 'S' && b[0] != 'N') {
			return false
		}
		s.Name, s.Product = "postgresql", "PostgreSQL"
		ans, err := p.exchange(ctx, ap, postgresStartup("postgres", "postgres"), p.ioTimeout(), 4096)
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
		b, err := p.exchange(ctx, ap, mongoCommand("hello", "admin"), p.bannerWait(), 64<<10)
		if err != nil {
			return false
		}
		if _, ok := ParseMongoReply(b); !ok {
			return false
		}
		s.Name, s.Product = "mongodb", "MongoDB"
		b, err = p.exchange(ctx, ap, mongoCommand("listDatabases", "admin"), p.bannerWait(), 64<<10)
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
		b, err := p.exchange(ctx, ap, append([]byte{byte(len(q) >> 8), byte(len(q))}, q...), p.bannerWait(), 4096)
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
		b, err := p.exchange(ctx, ap, []byte("stats\r\n"), p.bannerWait(), 16<<10)
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
