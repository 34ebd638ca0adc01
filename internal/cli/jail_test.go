package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJailReplay(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(`guard:
  ignore: [198.51.100.0/24]
  jails:
    sshd:
      maxretry: 3
      findtime: 10m
      bantime: 1h
`), 0o600)
	var log strings.Builder
	line := func(sec int, from string) {
		fmt.Fprintf(&log, "Mar  1 12:%02d:%02d vps sshd[%d]: Failed password for root from %s port 40022 ssh2\n", sec/60, sec%60, 1000+sec, from)
	}
	for i := range 5 { // banned at the third; two more while banned
		line(i, "192.0.2.1")
	}
	for i := range 5 { // ignored
		line(10+i, "198.51.100.5")
	}
	line(20, "2001:db8::1") // one /64
	line(21, "2001:db8::2")
	line(22, "2001:db8::3")
	line(30, "203.0.113.7") // two failures, no ban
	line(31, "203.0.113.7")
	log.WriteString("Mar  1 12:01:00 vps CRON[99]: pam_unix(cron:session): session opened\n")
	logPath := filepath.Join(dir, "auth.log")
	os.WriteFile(logPath, []byte(log.String()), 0o600)

	var out, errb bytes.Buffer
	if code := Main([]string{"jail", "replay", "--jail", "sshd", "-c", cfg, logPath, "--json"}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep replayReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Lines != 16 || len(rep.Bans) != 2 || rep.Stats.Ignored != 5 || rep.Stats.WhileBanned != 2 {
		t.Fatalf("report %+v", rep)
	}
	b := rep.Bans[0]
	if b.Prefix.String() != "192.0.2.1/32" || b.Failures != 3 || b.BanTime != "1h0m0s" || b.Time.Minute() != 0 || b.Time.Second() != 2 {
		t.Errorf("first ban %+v", b)
	}
	if b := rep.Bans[1]; b.Prefix.String() != "2001:db8::/64" || b.Address.String() != "2001:db8::3" {
		t.Errorf("second ban %+v", b)
	}

	out.Reset()
	if code := Main([]string{"jail", "replay", "-c", cfg, "--jail", "sshd", logPath}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"Bans:      2 of 2 sources", "192.0.2.1/32", "2001:db8::/64 (2001:db8::3)", "5 ignored"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}

	for _, args := range [][]string{
		{"jail"},
		{"jail", "replay", logPath},
		{"jail", "replay", "--jail", "nope", "-c", cfg, logPath},
	} {
		if code := Main(args, nil, &out, &errb); code != ExitUsage {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	if code := Main([]string{"jail", "replay", "--jail", "sshd", "-c", cfg, filepath.Join(dir, "missing.log")}, nil, &out, &errb); code != ExitRuntime {
		t.Errorf("missing file: exit %d", code)
	}
}
