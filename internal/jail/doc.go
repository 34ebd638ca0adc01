// Package jail counts failures per address in time windows and decides bans:
// maxretry, findtime, bantime, incremental bantime and ignore lists. This
// file set holds the guard section's configuration.
package jail
