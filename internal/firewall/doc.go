// Package firewall renders moat's one nftables table (table inet moat) from
// config, applies it atomically and manages its ban and geo sets. This file
// set holds its configuration; rendering arrives in the firewall part.
package firewall
