package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/host"
)

func TestInitFromFixture(t *testing.T) {
	env := map[string]string{"SSH_CONNECTION": "203.0.113.50 51234 203.0.113.10 22", "SUDO_USER": "deploy"}
	s := inspect(context.Background(), host.New("../audit/testdata/hosts/redis-open"), func(k string) string { return env[k] })
	var b strings.Builder
	s.write(&b)
	out := b.String()
	c, err := config.Parse("init.yaml", []byte(out))
	if err != nil {
		t.Fatalf("init output does not validate: %v\n%s", err, out)
	}
	if c.Host.Admin.User != "deploy" {
		t.Errorf("admin %q", c.Host.Admin.User)
	}
	if len(c.Host.Admin.Sources) != 1 || c.Host.Admin.Sources[0].String() != "203.0.113.50/32" {
		t.Errorf("operator not in admin sources: %v", c.Host.Admin.Sources)
	}
	if c.SSH.Port != 22 || c.Firewall.PublicInterface != "eth0" {
		t.Errorf("ssh port %d, public interface %q", c.SSH.Port, c.Firewall.PublicInterface)
	}
	if len(c.Firewall.VPN) != 1 || c.Firewall.VPN[0].String() != "6379/tcp" {
		t.Errorf("redis must be suggested VPN-only, got %v\n%s", c.Firewall.VPN, out)
	}
	for _, want := range []string{"80/tcp       # caddy", "443/tcp      # caddy", "redis-server on 0.0.0.0: a datastore", "Local only, nothing to do: 53/tcp"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestInitCommandValidates(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"init", "--root", "../audit/testdata/hosts/clean"}, nil, &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := config.Parse("init.yaml", stdout.Bytes()); err != nil {
		t.Fatal(err)
	}
}
