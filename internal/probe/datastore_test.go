package probe

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// serveProto answers each connection with reply(request bytes read so
// far) on loopback, the way each datastore answers an anonymous client.
func serveProto(t *testing.T, reply func(req []byte) []byte) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if r := reply(buf[:n]); r != nil {
					c.Write(r)
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func pgMsg(typ byte, body []byte) []byte {
	out := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(4+len(body)))
	return append(out, body...)
}

// TestDatastoresWithoutAuthentication: what each datastore says to a
// client that sends no credential decides between "answers without
// authentication" (critical) and "asks for it", on any port.
func TestDatastoresWithoutAuthentication(t *testing.T) {
	isSSLRequest := func(b []byte) bool { return len(b) == 8 && binary.BigEndian.Uint32(b[4:]) == 80877103 }
	pg := func(auth uint32) func([]byte) []byte {
		return func(req []byte) []byte {
			if isSSLRequest(req) {
				return []byte("N")
			}
			if len(req) > 8 && binary.BigEndian.Uint32(req[4:8]) == 196608 {
				return pgMsg('R', binary.BigEndian.AppendUint32(nil, auth))
			}
			return nil
		}
	}
	mongo := func(listOK bool) func([]byte) []byte {
		return func(req []byte) []byte {
			if len(req) < 21 || binary.LittleEndian.Uint32(req[12:16]) != 2013 {
				return nil
			}
			if string(req[26:31]) == "hello" || listOK {
				return mongoOK()
			}
			// {ok: 0.0, errmsg: "requires authentication"}
			doc := []byte{0, 0, 0, 0, 0x01, 'o', 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0}
			msg := "command listDatabases requires authentication"
			doc = append(doc, 0x02)
			doc = append(doc, "errmsg\x00"...)
			doc = binary.LittleEndian.AppendUint32(doc, uint32(len(msg)+1))
			doc = append(doc, msg...)
			doc = append(doc, 0, 0)
			binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
			out := make([]byte, 21)
			binary.LittleEndian.PutUint32(out, uint32(21+len(doc)))
			binary.LittleEndian.PutUint32(out[12:], 2013)
			return append(out, doc...)
		}
	}
	httpJSON := func(path, body string) func([]byte) []byte {
		return func(req []byte) []byte {
			r := "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
			if string(req[:min(len(req), 5+len(path))]) == "GET "+path+" " || (path == "/" && string(req[:min(len(req), 6)]) == "GET / ") {
				r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + itoaU(uint64(len(body))) + "\r\n\r\n" + body
			}
			return []byte(r)
		}
	}
	cases := []struct {
		name    string
		reply   func([]byte) []byte
		service string
		open    bool
	}{
		{"postgres-trust", pg(0), "postgresql", true},
		{"postgres-scram", pg(10), "postgresql", false},
		{"mongo-open", mongo(true), "mongodb", true},
		{"mongo-auth", mongo(false), "mongodb", false},
		{"docker", httpJSON("/version", `{"ApiVersion":"1.43","Version":"24.0.7"}`), "docker", true},
		{"etcd", httpJSON("/version", `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`), "etcd", true},
		{"elasticsearch", httpJSON("/", `{"cluster_name":"prod","tagline":"You Know, for Search","version":{"number":"8.11.1"}}`), "elasticsearch", true},
		{"redis-auth", func(b []byte) []byte { return []byte("-NOAUTH Authentication required.\r\n") }, "redis", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ap := serveProto(t, c.reply)
			p := &Prober{Timeout: 2 * time.Second, BannerWait: 300 * time.Millisecond}
			s := p.identify(context.Background(), ap)
			if s.Name != c.service {
				t.Fatalf("identified as %q (%+v), want %q", s.Name, s, c.service)
			}
			if s.Datastore == nil || s.Datastore.Unauthenticated != c.open {
				t.Errorf("datastore %+v, want unauthenticated=%v", s.Datastore, c.open)
			}
		})
	}
}
