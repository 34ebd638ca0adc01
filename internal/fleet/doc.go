// Package fleet shares ban decisions between the hosts of one fleet over
// NATS JetStream: an embedded, optionally clustered NATS node (or an
// existing NATS deployment), a replicated decisions stream with one
// subject per origin host and prefix, per-message TTLs equal to each ban's
// remaining time, and a durable consumer per host. It decides nothing and
// enforces nothing itself: the daemon hands it the host's own decisions to
// publish, and it hands back the decisions of trusted hosts that passed
// its checks (Guard), which the daemon applies through the ban store like
// any other ban.
//
// The trust model is in docs/design.md ("Fleet: who may ban what").
package fleet
