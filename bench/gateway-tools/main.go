// Command gateway-tools is bench/gateway.sh's helper:
//
//	gateway-tools upstream -addr 127.0.0.1:9000   a small HTTP/1.1 upstream
//	gateway-tools mmdb -o geo.mmdb                a country database (GeoLite2 shape)
//	gateway-tools idle -addr 127.0.0.1:8443 -n 5000
//	    opens n TLS keep-alive connections, one request on each, and holds
//	    them idle until its standard input closes
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gateway-tools upstream|mmdb|idle [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "address")
	host := fs.String("host", "localhost", "TLS server name and Host header")
	out := fs.String("o", "geo.mmdb", "output file")
	n := fs.Int("n", 5000, "connections")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "upstream":
		err = upstream(*addr)
	case "mmdb":
		err = mmdb(*out)
	case "idle":
		err = idle(*addr, *host, *n)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-tools:", err)
		os.Exit(1)
	}
}

// upstream answers every request with a small fixed page, like an API.
func upstream(addr string) error {
	body := []byte(`{"status":"ok","service":"bench","items":[1,2,3,4,5,6,7,8]}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// mmdb writes a country database with 127.0.0.0/8 in DE among 50,000
// other networks, so lookups walk a tree of realistic depth.
func mmdb(path string) error {
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", IncludeReservedNetworks: true, RecordSize: 24})
	if err != nil {
		return err
	}
	rec := func(c string) mmdbtype.Map {
		return mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(c)}}
	}
	countries := []string{"US", "CN", "DE", "FR", "GB", "JP", "BR", "IN", "RU", "KP"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50000 {
		ip := net.IPv4(byte(1+r.IntN(222)), byte(r.IntN(256)), byte(r.IntN(256)), 0)
		if ip[12] == 127 {
			continue
		}
		if err := w.Insert(&net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}, rec(countries[r.IntN(len(countries))])); err != nil {
			return err
		}
	}
	_, lo, _ := net.ParseCIDR("127.0.0.0/8")
	if err := w.Insert(lo, rec("DE")); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// idle opens n keep-alive TLS connections, makes one request on each and
// keeps them open, idle, until stdin closes. It prints "ready N" once all
// are established.
func idle(addr, host string, n int) error {
	var mu sync.Mutex
	var conns []net.Conn
	var failed int
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err == nil {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
				var resp *http.Response
				if resp, err = http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					c.SetDeadline(time.Time{})
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			conns = append(conns, c)
		})
	}
	wg.Wait()
	fmt.Printf("ready %d %d\n", len(conns), failed)
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d connections failed", failed, n)
	}
	return nil
}
