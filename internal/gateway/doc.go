// Package gateway is the edge reverse proxy: ACME TLS, sites and routes to
// private upstreams, per-route policies and stealth. This file set holds its
// configuration; the proxy arrives in the gateway part.
package gateway
