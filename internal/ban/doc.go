// Package ban keeps the guard's decisions and enforces them.
//
// Store records bans, their history and the log sources' read positions in
// SQLite (the pure-Go driver, WAL, one write transaction per batch of
// concurrent calls), and mirrors the active bans in memory so that the
// gateway can ask Contains on every request. Enforcer puts the stored bans
// into the kernel through a Sets interface (the firewall's ban sets,
// connected by the daemon), with the kernel's own timeouts, reconciles the
// two on start, and reports bans and unbans as events for alerts.
//
// The store is the record and the kernel a cache of it: on a mismatch the
// store wins.
package ban
