package ufwimport

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/config"
)

func seeds(f *testing.F, files ...string) {
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzReadRules: any rules file either fails with a line number or
// imports into a config moat accepts.
func FuzzReadRules(f *testing.F) {
	seeds(f, "testdata/root/etc/ufw/user.rules", "testdata/root/etc/ufw/user6.rules")
	f.Add([]byte("### tuple ### allow_log-all any any 0.0.0.0/0 any 10.0.0.1 in_wg0 comment=6162\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ReadRules(bytes.NewReader(data), false)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "read rules") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		y := Translate(Input{Source: "fuzz", Rules: rs})
		if _, err := config.Parse("fuzz.yaml", []byte(y)); err != nil {
			t.Fatalf("import refused by config check: %v\n%s", err, y)
		}
	})
}

// FuzzReadStatus does the same for ufw status output.
func FuzzReadStatus(f *testing.F) {
	seeds(f, "testdata/status-verbose.txt", "testdata/status.txt")
	apps := Apps{}
	parseApps("[OpenSSH]\nports=22/tcp\n[Nginx Full]\nports=80,443/tcp\n[X]\nports=1:3/tcp|9/udp\n", apps)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ReadFile("fuzz", data, apps)
		if err != nil {
			return
		}
		y := Translate(in)
		if _, err := config.Parse("fuzz.yaml", []byte(y)); err != nil {
			t.Fatalf("import refused by config check: %v\n%s", err, y)
		}
	})
}
