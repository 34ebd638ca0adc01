// Package jail counts failures per source in time windows and decides bans:
// maxretry, findtime, bantime, incremental bantime and ignore lists. It
// holds the guard section's configuration (Config, Jail) and the engine
// (Engine) that turns failures into Decisions, one engine per jail.
//
// # Counting
//
// A source is an IPv4 address or an IPv6 address widened to the ban prefix
// (a /64 by default), so an attacker cannot reset its count by moving
// within its prefix. Failures are counted by their own timestamps, not by
// arrival, so a replayed log decides what the live run would have: a
// failure counts while it is less than findtime older than the source's
// newest failure, and the maxretry-th failure in the window bans the
// source for bantime × factor^(previous bans), capped at increment.max.
// The source's count then starts over. Failures without an address, from
// ignored sources, or from sources already banned are counted apart and
// ban nothing.
//
// # Memory under a spray
//
// At most MaxTracked sources are tracked (1<<20 by default, about 90 bytes
// each, plus 8 per failure beyond the first held for a source with two or
// more: about 100 MB full of single failures). A source is
// forgotten when its newest failure leaves the window; admissions expire
// the oldest sources as they go and Sweep expires the rest. When the table
// is full, a new source evicts the least recently seen source among those
// with the fewest failures, and only if that source has no more failures
// than the newcomer brings; otherwise the newcomer is not tracked
// (Stats.Dropped). What flooding can and cannot achieve:
//
//   - A spray of single failures, from any number of sources, displaces
//     only other single-failure sources, oldest first. It never resets a
//     source with two or more failures in its window: with maxretry 3 or
//     more, a source one failure from its ban is banned at its next
//     failure however large the spray.
//   - A source with one failure loses it when MaxTracked newer sources
//     fail in between. An attacker hiding slow guesses in a spray so must
//     bring MaxTracked fresh sources (a million /32s or /64s by default)
//     per guess.
//   - Filling the table with sources of k failures takes k × MaxTracked
//     failures within findtime; until those age out, sources new to the
//     table are not tracked (a blind spot that Stats.Dropped shows), while
//     every flooding source reaching maxretry is still banned.
//
// Evictions and drops are counted so that a spray is visible in metrics.
//
// # Concurrency
//
// An Engine is safe for concurrent use; Reconfigure (SIGHUP) swaps its
// config while keeping the failures counted.
package jail
