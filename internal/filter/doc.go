// Package filter reads what log lines mean: per-service parsers that turn
// lines into failures (and sshd's accepted logins into successes) for the
// jails to count.
//
// The pipeline is logwatch.Line → filter.Failure → jail → ban. A Filter
// reads one stream of lines (Process, with a caller-owned Result so that a
// line costs no allocation); sshd's filter follows connections by pid to
// tie a "Too many authentication failures" to the address an earlier line
// of the same connection gave.
//
// Injection safety comes first. An address is taken only from a place
// the service itself writes, never from a span an attacker fills (user
// names, auth info, request lines, headers):
//
//   - where only the service's own text follows the address, it is read
//     from the end of the line ("Invalid user X from ADDR port N": the
//     last " from " is sshd's, whatever X holds);
//   - where attacker text may stand on both sides ("Failed password for
//     invalid user X from ADDR port N ssh2: INFO"), every place the
//     grammar allows is a candidate, and the line is attributed only if
//     they agree, or if one of them is the address the same connection
//     already gave unambiguously; otherwise the failure is counted as
//     unattributable and bans nothing;
//   - addresses are parsed strictly (no zone, no leading zeros, IPv4-mapped
//     IPv6 unmapped), host names are never resolved, and a line with a
//     control character, cut short, or longer than Options.MaxLine
//     attributes nothing.
//
// The built-in filters parse bytes at fixed markers, without regular
// expressions; user-defined filters (Compile) use Go's linear-time regexp
// with a strict <HOST> pattern and a check that the address could not
// have been matched elsewhere in the line. See README.md for the modes and
// the rules of user-defined filters.
package filter
