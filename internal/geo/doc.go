// Package geo answers two questions from a country mmdb file (MaxMind
// GeoLite2/GeoIP2 Country or DB-IP Lite country): which country an address
// is in, for the gateway's per-request geo policy, and which networks a set
// of countries covers, as minimal merged CIDR lists for the firewall's
// interval sets.
//
// Both answers use the same rule: a record's country.iso_code, else its
// registered_country.iso_code, else no country. IPv4 networks that MaxMind
// trees alias into IPv6 (::ffff:0:0/96, 2001::/32, 2002::/16) are reported
// once, as IPv4.
package geo
