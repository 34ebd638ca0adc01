// Package statuspage serves moat's read-only status page: every layer's
// state, bans over time, the audit's trend, the pending change and the
// host's conditions, as server-rendered HTML with inline SVG charts (the
// numbers need no JavaScript) and as JSON under /api/, the same JSON as
// `moat status --json`. It listens on loopback or a VPN address only,
// serves only loopback and VPN sources (checked per connection), and can
// ask for a token besides. A strict Content-Security-Policy allows
// nothing but the page's own origin; an ETag over the rendered page lets
// an idle tab refresh with a 304.
package statuspage
