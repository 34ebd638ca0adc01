// Package blocklist loads shared lists of networks to drop (Spamhaus
// DROP/EDROP, FireHOL netsets, plain one-per-line CIDR lists) from files
// or https URLs, refreshes them with conditional GETs, keeps the last good
// copy of each under the state directory, and hands the union of every
// list, minus what must never be blocked, to a Sink (the firewall's
// blocklist sets, connected by internal/daemon) in one atomic replacement.
//
// A list is all or nothing: one malformed line refuses the whole download
// (with its line number) and the list loaded before stays in force. Raw
// list bytes may come from anywhere through a Feed (an https URL, a file,
// or a fleet's shared store through Manager.Offer).
package blocklist
