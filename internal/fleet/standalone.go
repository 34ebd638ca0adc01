package fleet

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ServerConfig renders a nats-server configuration for a standalone
// (non-embedded) NATS serving fleet: JetStream in storeDir, listening on
// listen, and one NKEY user per member (hosts: origin → public key) with
// Permissions, the same as the embedded node gives. It is a starting
// point for an operator's own deployment (add TLS and clustering there).
func ServerConfig(fleet string, hosts map[string]string, listen, storeDir string) string {
	var b strings.Builder
	// nats-server's parser knows no \u escapes: JSON without HTML escaping.
	js := func(v any) string {
		var b strings.Builder
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		e.Encode(v)
		return strings.TrimSpace(b.String())
	}
	q := func(s string) string { return js(s) }
	fmt.Fprintf(&b, "# nats-server configuration for moat fleet %s\nlisten: %s\n", fleet, q(listen))
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n}\n", q(storeDir))
	b.WriteString("authorization {\n  users = [\n")
	for _, name := range slices.Sorted(maps.Keys(hosts)) {
		p := Permissions(fleet, name)
		pub, sub := js(p.Publish.Allow), js(p.Subscribe.Allow)
		fmt.Fprintf(&b, "    # %s\n    {nkey: %s, permissions: {publish: {allow: %s}, subscribe: {allow: %s}}}\n", name, q(hosts[name]), pub, sub)
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
