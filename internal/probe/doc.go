// Package probe is moat's view of a host from outside, the way an attacker
// sees it: a TCP connect scan of every port on every address of the target
// (rate-limited, bounded in time, with retries that tell a filtered port
// from a closed one), UDP probes with protocol payloads, what answers on
// each open port (SSH, TLS, HTTP, unauthenticated datastores), and a
// judgement of what it saw against the exposure moat.yaml declares.
//
// It needs no root and never sends a credential: SSH is asked which
// authentication methods it offers after a "none" request, datastores are
// sent the commands an anonymous client may send (PING, a startup message,
// hello, stats, GET /version), HTTP gets plain GETs.
package probe
