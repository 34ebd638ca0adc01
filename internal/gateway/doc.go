// Package gateway is moat's edge reverse proxy: the only thing that faces
// the internet. It terminates TLS with certificates from ACME (certmagic:
// HTTP-01 and TLS-ALPN-01, renewal by ACME Renewal Info) or static files,
// routes by host and path prefix to private upstreams (http, https, unix
// sockets), and applies per-route policies before any byte reaches them.
//
// # Stealth
//
// Someone who knows no site's name learns nothing about the stack: every
// way in ends in a closed connection, without a byte written.
//
//   - TLS: the gateway reads the ClientHello from the socket itself
//     (clienthello.go: records and fragments as RFC 8446 allows, bounded
//     by crypto/tls's own limits and the header timeout) and decides by
//     its server name before crypto/tls sees a byte (screen.go). No
//     server name, an IP address, a name no site has, a name with a
//     trailing dot (forbidden by RFC 6066; crypto/tls would send an
//     alert, and the hello cannot be edited because both ends hash it),
//     bytes that are not a TLS handshake, a malformed or oversized hello:
//     closed, with no alert, no certificate and no negotiation, so
//     version, ALPN, cipher suite and group probes get nothing either.
//     The names admitted are those certificates are chosen from (static
//     certificates, their wildcards, ACME sites, including names being
//     validated by tls-alpn-01), read from the current config. A hello
//     naming a site goes to crypto/tls unchanged: TLS 1.2 and 1.3, its
//     usual alerts for what it does not support.
//   - Plain HTTP (port 80): the request head is read first (httphead.go,
//     bounded as net/http bounds it) and checked with net/http's own
//     parser plus the checks its server adds; a head net/http would answer
//     itself (400 bad request line, header or Host, missing or repeated
//     Host; 417; 431 oversized; 501 Transfer-Encoding; 505 version) is
//     closed. The port serves one request per connection, so every head
//     is screened. ACME HTTP-01 and the 308 to HTTPS work as before for
//     known hosts.
//   - An unknown Host gets its connection closed without a response, on
//     either port (HTTP/2: the stream is reset).
//   - Past a known TLS server name, net/http still answers malformed
//     requests itself (400, 431, 501, 505), without a Server header or
//     version: the client knows the site by then.
//   - A request a policy refuses gets the route's deny answer: "drop"
//     (closed, like nginx's 444) or "notfound", the very answer the site
//     gives a path that does not exist: the request is replayed as a GET of
//     a random path through the route such a path takes, so status,
//     headers, body and timing match. Nothing ever answers 403.
//   - No Server header: upstreams' Server and X-Powered-By (and similar)
//     headers are removed; the gateway's own answers are minimal
//     text/plain bodies.
//
// # Order of checks
//
// Every connection is screened first (see Stealth): the ClientHello's
// server name on HTTPS, the request head's form on port 80. Then every
// request, cheapest check first:
//
//  1. Host: unknown → dropped. (Port 80 then only answers ACME HTTP-01
//     challenges and redirects to HTTPS with 308.)
//  2. Honeypot paths (any host): reported as a failure; answered as a
//     missing path (or dropped, on an unknown host).
//  3. Route by longest path prefix, on the cleaned path (dot segments and
//     repeated slashes resolved; prefixes match without regard to case and
//     not only at segment boundaries). A path an application could read
//     as another route (..;/ or backslashes) is answered as missing.
//  4. Ban check: the client address against Deps.Bans.
//  5. Allowlist: CIDRs, "vpn" (Deps.VPN), "admin" (Deps.Admin).
//  6. Geo: countries admitted or refused; an address without a country
//     fails an allow list and passes a deny list.
//  7. Rate limit: a token bucket per client (IPv4 address, IPv6 /64) per
//     route, in an LRU table bounded at 65,536 clients per route (16
//     shards, least recently seen evicted, about 150 bytes each); 429 with
//     Retry-After, or drop. A client's trips are reported at most once per
//     10 s per route.
//  8. Basic auth (bcrypt htpasswd): a per-client failure budget (10, then
//     10 a minute) spent before hashing, a gateway-wide cap on concurrent
//     bcrypt work (half the CPUs), a dummy hash for unknown users, a
//     10-minute cache of verified credentials. Wrong credentials are
//     reported as failures.
//  9. Forward auth (Authelia, Authentik, oauth2-proxy): a GET to the verify
//     URL with the client's headers but X-Forwarded-Method/-Proto/-Host/
//     -Uri/-For written by the gateway; 2xx admits and copies the
//     configured headers to the upstream request (the client's own values
//     of those are always removed); any other answer goes to the client.
//  10. Request limits: body size (413), body read deadline; header size,
//     header and idle timeouts are the server's.
//  11. Proxy, with X-Forwarded-For/-Proto/-Host and X-Real-IP set by the
//     gateway, security headers added where the upstream set none (HSTS on
//     HTTPS, nosniff, Referrer-Policy, X-Frame-Options; configurable per
//     gateway and route), and upstream failures answered 502 without
//     detail.
//
// The client address is the TCP peer, unless the peer is in
// trusted_proxies: then it comes from client_ip_header (X-Forwarded-For by
// default, walked from the right past trusted proxies). Forwarding headers
// from anyone else are removed before the upstream sees the request.
//
// # Upstreams
//
// Nothing about the inside leaks through an answer: upstream headers
// naming software, caches or addresses (DefaultStripHeaders, plus
// strip_headers, less a route's pass_headers) are removed, and the
// upstream's own address in Location, Content-Location, Refresh and
// Set-Cookie Domain becomes the public host. Each notfound replay uses a
// fresh random path. TRACE and CONNECT are refused like any other refused
// request, never forwarded.
//
// Body-less GET and HEAD requests (HTTP/1.1 and HTTP/2) to plain-HTTP
// upstreams take the fast path (fastpath.go), whose pooled connections
// are reused only when provably in step (framing.go); everything else
// goes through net/http's Transport with a new connection per request.
// README.md says exactly when a connection is reused.
//
// # Reload
//
// Reload builds the new config completely (certificates, htpasswd files,
// new listeners, a new certificate manager if ACME settings changed)
// before an atomic swap; requests read the config once, so those in
// flight finish on the config they started with. Changed header limits or
// timeouts start a new http.Server generation on the same socket; the old
// one keeps its connections until they end. A config that fails to build
// leaves the old one serving.
//
// # Observability
//
// Access log: one JSON object per line (time, site, route, client, peer
// when behind a trusted proxy, method, path, proto, status, bytes,
// duration_ms, ua, deny, user), buffered in memory and written by a
// goroutine; when the disk cannot keep up, lines are dropped and counted,
// never waited for. Status 444 means closed without an answer, 499 the
// client went away. Metrics: moat_gateway_requests_total{site,route,code},
// moat_gateway_request_duration_seconds{site,route},
// moat_gateway_denials_total{site,route,reason},
// moat_gateway_dropped_total{reason} (unknown_sni, not_tls, bad_hello,
// bad_request, unknown_host), moat_gateway_failures_total{kind},
// moat_gateway_tls_handshake_errors_total, moat_gateway_acme_events_total,
// moat_gateway_reloads_total, moat_gateway_access_log_dropped_total.
package gateway
