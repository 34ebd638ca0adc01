package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProbeRefusesWhatIsNotOneHost: a hurried operator's typo must not
// become a scan of a network: ranges, broadcast, multicast and the
// unspecified address exit 2 before any packet, as do bad flags.
func TestProbeRefusesWhatIsNotOneHost(t *testing.T) {
	for _, args := range [][]string{
		{"probe", "255.255.255.255"},
		{"probe", "0.0.0.0"},
		{"probe", "::"},
		{"probe", "224.0.0.251"},
		{"probe", "ff02::1"},
		{"probe", "10.0.0.0/8"},
		{"probe"},
		{"probe", "127.0.0.1", "127.0.0.2"},
		{"probe", "127.0.0.1", "--rate", "0"},
		{"probe", "127.0.0.1", "--ports", "0-10"},
		{"probe", "127.0.0.1", "--json", "--sarif"},
		{"probe", "127.0.0.1", "--fail-on", "severe"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(args, nil, &stdout, &stderr); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, ExitUsage, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("%v: printed a report", args)
		}
	}
}

// TestProbeLoopbackJSON probes a listener on loopback with a config that
// does not declare it: the JSON report names the port and the finding,
// and --fail-on high exits 3.
func TestProbeLoopbackJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("+PONG\r\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := filepath.Join(t.TempDir(), "moat.yaml")
	os.WriteFile(cfg, []byte("firewall:\n  public: [80/tcp, 443/tcp]\n"), 0o600)
	var stdout, stderr bytes.Buffer
	code := Main([]string{"probe", "127.0.0.1", "-c", cfg, "--json", "--no-udp", "--ports", itoa(port), "--fail-on", "high"}, nil, &stdout, &stderr)
	if code != ExitFindings {
		t.Fatalf("exit %d, want %d\n%s", code, ExitFindings, stderr.String())
	}
	var rep struct {
		Schema string `json:"schema"`
		Hosts  []struct {
			Open []int `json:"open"`
		} `json:"hosts"`
		Results []struct {
			ID, Status, Subject string
		} `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if rep.Schema != "moat.probe/v1" || len(rep.Hosts) != 1 || len(rep.Hosts[0].Open) != 1 || rep.Hosts[0].Open[0] != port {
		t.Errorf("report: %s", stdout.String())
	}
	found := false
	for _, r := range rep.Results {
		if r.ID == "PR-PORT-001" && r.Status == "fail" && strings.HasSuffix(r.Subject, "tcp/"+itoa(port)) {
			found = true
		}
	}
	if !found {
		t.Errorf("the undeclared port is not a finding: %s", stdout.String())
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
