package lab

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestSSHD(t *testing.T) {
	l := New(t)
	vps, attacker := l.Host("vps"), l.Host("attacker")
	l.Link(vps, "eth0", attacker, "eth0",
		[]string{"198.51.100.1/24", "2001:db8::1/64"},
		[]string{"198.51.100.2/24", "2001:db8::2/64"})
	signer, authLine := GenerateKey()
	other, _ := GenerateKey()
	logPath := filepath.Join(t.TempDir(), "auth.log")
	sshd := vps.StartSSHD(t, SSHDOptions{
		Port:        2222,
		ExtraConfig: "LogLevel VERBOSE\nMatch User nobody\n\tPasswordAuthentication no\n",
		LogFile:     logPath,
		Users: []SSHUser{
			{Name: "alice", AuthorizedKeys: []string{authLine}},
			{Name: "bob", Password: "correct horse"},
		},
	})
	if sshd.LogPath != logPath || sshd.Port != 2222 {
		t.Errorf("sshd = %+v", sshd)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	for _, c := range []struct {
		user, addr string
		auth       ssh.AuthMethod
		ok         bool
	}{
		{"alice", sshd.Addr("198.51.100.1"), ssh.PublicKeys(signer), true},
		{"alice", sshd.Addr("2001:db8::1"), ssh.PublicKeys(signer), true},
		{"bob", sshd.Addr("198.51.100.1"), ssh.Password("correct horse"), true},
		{"bob", sshd.Addr("198.51.100.1"), ssh.Password("wrong"), false},
		{"alice", sshd.Addr("198.51.100.1"), ssh.PublicKeys(other), false},
		{"alice", sshd.Addr("198.51.100.1"), ssh.Password(""), false},
	} {
		err := SSHLogin(ctx, attacker, c.addr, c.user, c.auth)
		if (err == nil) != c.ok {
			t.Errorf("login %s at %s: err = %v, want ok=%v", c.user, c.addr, err, c.ok)
		}
	}

	// sshd logs a failure when the connection ends; wait for it.
	want := "Failed password for bob from 198.51.100.2 port "
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(sshd.Log(), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(sshd.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, sshd.Log())
	}
	if !strings.Contains(sshd.Log(), "Accepted publickey for alice from 2001:db8::2") {
		t.Errorf("log lacks alice's key login:\n%s", sshd.Log())
	}

	// The users exist only inside vps.
	if out := vps.MustRun(t, "id", "-u", "alice"); strings.TrimSpace(string(out)) == "" {
		t.Error("alice unknown inside vps")
	}
	if _, err := attacker.Run(t.Context(), "id", "alice"); err == nil {
		t.Error("alice exists in attacker")
	}
	if b, _ := os.ReadFile("/etc/passwd"); strings.Contains(string(b), "alice:") {
		t.Error("alice leaked into the machine's /etc/passwd")
	}

	// A second sshd on the same host, logging the way auth.log does; the
	// users carry over.
	syslog := vps.StartSSHD(t, SSHDOptions{Port: 2223, SyslogFormat: true})
	if err := SSHLogin(ctx, attacker, syslog.Addr("198.51.100.1"), "bob", ssh.Password("nope")); err == nil {
		t.Error("wrong password accepted")
	}
	if err := SSHLogin(ctx, attacker, syslog.Addr("198.51.100.1"), "alice", ssh.PublicKeys(signer)); err != nil {
		t.Error(err)
	}
	line := regexp.MustCompile(`(?m)^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d vps sshd\[\d+\]: Failed password for bob from 198\.51\.100\.2 port \d+ ssh2$`)
	deadline = time.Now().Add(5 * time.Second)
	for !line.MatchString(syslog.Log()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !line.MatchString(syslog.Log()) {
		t.Errorf("syslog-format log lacks a failure line:\n%s", syslog.Log())
	}

	sshd.Stop()
	if err := SSHLogin(ctx, attacker, sshd.Addr("198.51.100.1"), "alice", ssh.PublicKeys(signer)); err == nil {
		t.Error("login after Stop succeeded")
	}
}

func TestRenderSSHDConfig(t *testing.T) {
	got := renderSSHDConfig(2222, "/tmp/key", "LogLevel VERBOSE\r\nMaxAuthTries 2\nMatch Address 10.0.0.0/8\n  PasswordAuthentication no")
	golden := filepath.Join("testdata", "sshd_config.golden")
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("config:\n%s\nwant:\n%s", got, want)
	}
}

func TestGroupLines(t *testing.T) {
	h := &Host{users: map[string]sshUser{
		"alice": {SSHUser: SSHUser{Name: "alice", UID: 30000, Groups: []string{"ops", "adm"}}},
		"bob":   {SSHUser: SSHUser{Name: "bob", UID: 30001, Groups: []string{"ops"}}},
	}}
	got := h.groupLines([]string{"root:x:0:", "adm:x:4:syslog", "alice:x:30000:", "bob:x:30001:"})
	want := []string{"root:x:0:", "adm:x:4:syslog,alice", "alice:x:30000:", "bob:x:30001:", "ops:x:31000:alice,bob"}
	if !slices.Equal(got, want) {
		t.Errorf("groupLines = %q, want %q", got, want)
	}
}
