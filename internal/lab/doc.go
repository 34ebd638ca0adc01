// Package lab builds throwaway networks for end-to-end tests: hosts are
// network namespaces, links are veth pairs, and commands, Go functions,
// servers and a real sshd run inside them.
//
// A test builds what it needs and the lab removes it when the test ends,
// failed or not:
//
//	l := lab.New(t)
//	vps, attacker := l.Host("vps"), l.Host("attacker")
//	l.Link(vps, "eth0", attacker, "eth0",
//		[]string{"198.51.100.1/24", "2001:db8::1/64"},
//		[]string{"198.51.100.2/24", "2001:db8::2/64"})
//	vps.ServeTCP(t, "198.51.100.1:8080")
//	if !attacker.CanConnect("tcp", "198.51.100.1:8080", time.Second) { ... }
//
// Namespace names carry a per-process token whose ownership is an flock held
// for the life of the test binary, so concurrent `go test ./...` packages
// never collide, and New removes whatever a crashed run left behind.
//
// Setup methods (Host, Link, Route, Sysctl) fail the test that created the
// lab; call them from that test's goroutine. Addresses given to Dial and its
// relatives must be IP literals: sockets are made on a thread switched into
// the namespace, and name resolution could dial from elsewhere.
//
// The package is meant for _test.go files only.
package lab
