// Package schema holds the typed values moat's config is made of (ports,
// CIDRs, durations, sizes, country codes) and the strict YAML decoder that
// reports every error as file:line:col.
package schema
