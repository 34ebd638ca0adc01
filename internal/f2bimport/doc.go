// Package f2bimport reads a fail2ban configuration as fail2ban reads it —
// jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, their [INCLUDES],
// %(name)s interpolation and <tag> substitution, filter.d with its
// options — and writes the equivalent moat.yaml sections: jails, user
// filters translated to moat's regex syntax, ignore lists, and the ports
// the jails guard. What has no equivalent becomes a YAML comment.
package f2bimport
