package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

// TestHoneypotBannedInFirewallEndToEnd runs `moat run` in a lab namespace
// with the gateway on its public address: an attacker that requests a
// honeypot path is banned in the kernel's sets (its next TCP connect times
// out) within a second, and `moat bans` names the gateway jail.
func TestHoneypotBannedInFirewallEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft", "ip", "go")
	bin := filepath.Join(t.TempDir(), "moat")
	build := exec.Command("go", "build", "-o", bin, "github.com/moat-sh/moat/cmd/moat")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build moat: %v\n%s", err, out)
	}
	l := lab.New(t)
	vps, attacker := l.Host("vps"), l.Host("attacker")
	l.Link(vps, "eth0", attacker, "eth0", []string{"198.51.100.1/24"}, []string{"198.51.100.2/24"})

	// The application, on the vps's loopback.
	ln, err := vps.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "app")
	})}
	go app.Serve(ln)
	t.Cleanup(func() { app.Close() })

	dir := t.TempDir()
	cert, key := getPKI(t).leaf(t, "app.test")
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`ssh:
  exposure: public
firewall:
  public_interface: eth0
  public: [80/tcp, 443/tcp]
guard:
  jails:
    sshd:
      enabled: false
    gateway:
      maxretry: 1
      bantime: 1h
gateway:
  http: 198.51.100.1:80
  https: 198.51.100.1:443
  acme:
    storage: %s
  sites:
    - host: app.test
      certificate: %s
      key: %s
      routes:
        - upstream: http://%s
`, filepath.Join(dir, "acme"), cert, key, ln.Addr())), 0o600)
	if out, err := vps.Run(context.Background(), bin, "apply", "firewall", "--yes", "-c", cfg, "--root", filepath.Join(dir, "root")); err != nil {
		t.Fatalf("apply firewall: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "moat.sock")
	moat := vps.Start(t, bin, "run", "-c", cfg, "--state", filepath.Join(dir, "state"), "--socket", sock)

	client := attacker.HTTPClient()
	tr := client.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{ServerName: "app.test", RootCAs: getPKI(t).pool}
	tr.DisableKeepAlives = true
	client.Timeout = 2 * time.Second
	get := func(path string) (int, error) {
		req, _ := http.NewRequest("GET", "https://198.51.100.1"+path, nil)
		req.Host = "app.test"
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	up := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, err := get("/"); err == nil && code == 200 {
			up = true
			break
		}
	}
	if !up {
		t.Fatalf("the gateway does not serve the attacker before any ban:\n%s", moat.Output())
	}

	// The ban follows the hit; how soon depends on the machine's load, so
	// it is logged, and only a liveness bound is asserted.
	hit := time.Now()
	if code, err := get("/.env"); err != nil || code != 404 {
		t.Fatalf("honeypot answer: %d %v", code, err)
	}
	var bannedAfter time.Duration
	for deadline := hit.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !attacker.CanConnect("tcp", "198.51.100.1:443", 100*time.Millisecond) {
			bannedAfter = time.Since(hit)
			break
		}
	}
	if bannedAfter == 0 {
		t.Fatalf("the attacker still connects 30 s after the honeypot hit:\n%s", moat.Output())
	}
	t.Logf("banned in the firewall %v after the honeypot hit", bannedAfter.Round(time.Millisecond))
	out, err := exec.Command(bin, "bans", "--json", "--socket", sock).CombinedOutput()
	var bans []struct {
		Prefix string `json:"prefix"`
		Jail   string `json:"jail"`
	}
	if err != nil || json.Unmarshal(out, &bans) != nil || len(bans) != 1 || bans[0].Prefix != "198.51.100.2/32" || bans[0].Jail != "gateway" {
		t.Errorf("moat bans: %v %s", err, out)
	}
	if strings.Contains(moat.Output(), "panic") {
		t.Errorf("moat output:\n%s", moat.Output())
	}
}
