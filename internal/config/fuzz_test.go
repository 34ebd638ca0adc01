package config

import (
	"os"
	"testing"
)

// FuzzParse: any bytes give a config or positioned errors, never a panic.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../examples/moat.yaml", "../../examples/minimal.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("ssh: {port: 22, exposure: vpn}\nvpn: {interfaces: [wg0]}\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	// fail2ban habits: INI pasted, INI lines in YAML, foreign keys.
	f.Add([]byte("[DEFAULT]\nbantime = -1\n[sshd]\nenabled = true\nport = ssh\nlogpath = %(sshd_log)s\n"))
	f.Add([]byte("guard:\n  jails:\n    sshd:\n      bantime = 604800\n"))
	f.Add([]byte("guard:\n  ignoreip: 127.0.0.1/8 ::1\n  jails:\n    sshd: {logpath: x, bantime.increment: true, findTime: 5m, bantime: permanent}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v with error %v", c, err)
		}
	})
}
