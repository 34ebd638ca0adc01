package probe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/probe"
)

// The lab world: an attacker namespace linked to two targets.
//
//   - vps (198.51.100.1, 2001:db8:1::1): moat's real firewall (moat apply
//     firewall: default drop, 80/443 public, SSH at exposure vpn), moat's
//     gateway with a site app.test and a route /admin allowed from the
//     VPN only, sshd listening on every address.
//   - open (203.0.113.1, 2001:db8:2::1): sshd with passwords, redis-server
//     on 0.0.0.0 without a password, nginx's default site on 80, and a
//     Docker-style DNAT of 8080 to a "container" address.
const (
	vpsV4, vpsV6   = "198.51.100.1", "2001:db8:1::1"
	openV4, openV6 = "203.0.113.1", "2001:db8:2::1"
)

type world struct {
	bin      string
	attacker *lab.Host
	vpsCfg   string
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func moatBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moat-probe-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "moat")
		cmd := exec.Command("go", "build", "-o", builtBin, "github.com/moat-sh/moat/cmd/moat")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build moat: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func newWorld(t *testing.T) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end")
	}
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft", "ip", "go", "sshd", "redis-server", "nginx")
	w := &world{bin: moatBinary(t)}
	l := lab.New(t)
	vps, open, attacker := l.Host("vps"), l.Host("open"), l.Host("attacker")
	w.attacker = attacker
	l.Link(vps, "eth0", attacker, "eth0", []string{vpsV4 + "/24", vpsV6 + "/64"}, []string{"198.51.100.2/24", "2001:db8:1::2/64"})
	l.Link(open, "eth0", attacker, "eth1", []string{openV4 + "/24", openV6 + "/64"}, []string{"203.0.113.2/24", "2001:db8:2::2/64"})

	dir := t.TempDir()
	// --- vps: moat's gateway and firewall, sshd behind the VPN.
	app, err := vps.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appSrv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/admin") {
			io.WriteString(rw, "app "+r.URL.Path)
			return
		}
		http.NotFound(rw, r)
	})}
	go appSrv.Serve(app)
	t.Cleanup(func() { appSrv.Close() })
	cert, key := selfSigned(t, dir, "app.test")
	_, pub := lab.GenerateKey()
	vps.StartSSHD(t, lab.SSHDOptions{Users: []lab.SSHUser{{Name: "admin", AuthorizedKeys: []string{pub}}}})
	w.vpsCfg = filepath.Join(dir, "vps.yaml")
	writeFile(t, w.vpsCfg, fmt.Sprintf(`host:
  admin:
    user: admin
ssh:
  port: 22
  exposure: vpn
vpn:
  interfaces: [wg0]
firewall:
  public_interface: eth0
  public: [80/tcp, 443/tcp]
gateway:
  http: "[::]:80"
  https: "[::]:443"
  acme:
    storage: %s
  sites:
    - host: app.test
      certificate: %s
      key: %s
      routes:
        - path: /admin
          upstream: http://%s
          allow: [vpn]
        - upstream: http://%s
`, filepath.Join(dir, "acme"), cert, key, app.Addr(), app.Addr()))
	// The VPN: a link named wg0 to the admin's namespace (no WireGuard
	// module here), which sshd's exposure vpn needs up.
	l.Link(vps, "wg0", l.Host("admin"), "eth0", []string{"10.8.0.1/24"}, []string{"10.8.0.2/24"})
	if out, err := vps.Run(context.Background(), w.bin, "apply", "firewall", "--yes", "-c", w.vpsCfg, "--root", filepath.Join(dir, "root")); err != nil {
		t.Fatalf("apply firewall: %v\n%s", err, out)
	}
	gw := vps.Start(t, w.bin, "gateway", "serve", "-c", w.vpsCfg)
	waitListen(t, vps, gw, 443)

	// --- open: what a hurried operator leaves.
	open.StartSSHD(t, lab.SSHDOptions{
		ExtraConfig: "PasswordAuthentication yes\nKbdInteractiveAuthentication no\n",
		Users:       []lab.SSHUser{{Name: "alice", Password: "correct horse"}},
	})
	redisDir := filepath.Join(dir, "redis")
	os.MkdirAll(redisDir, 0o755)
	redis := open.Start(t, "redis-server", "--port", "6379", "--bind", "0.0.0.0", "::", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", redisDir)
	waitListen(t, open, redis, 6379)
	nginxDir := filepath.Join(dir, "nginx")
	os.MkdirAll(nginxDir, 0o755)
	nginxConf := filepath.Join(nginxDir, "nginx.conf")
	writeFile(t, nginxConf, fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 80 default_server;
    listen [::]:80 default_server;
    root /var/www/html;
    index index.html index.nginx-debian.html;
    location / { return 200 "<html><head><title>Welcome to nginx!</title></head><body>default site</body></html>\n"; }
  }
}
`, nginxDir))
	ng := open.Start(t, "nginx", "-c", nginxConf, "-g", "daemon off;")
	waitListen(t, open, ng, 80)
	// A "container" on a bridge-like address, published the way Docker
	// publishes: DNAT in prerouting, which INPUT rules never see.
	box := l.Host("ctr")
	l.Link(open, "docker0", box, "eth0", []string{"172.17.0.1/16"}, []string{"172.17.0.2/16"})
	box.Route("default", "via", "172.17.0.1")
	open.Sysctl("net.ipv4.ip_forward", "1")
	ctr, err := box.Listen("tcp", "172.17.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	ctrSrv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("X-Powered-By", "Express")
		io.WriteString(rw, "container app\n")
	})}
	go ctrSrv.Serve(ctr)
	t.Cleanup(func() { ctrSrv.Close() })
	writeFile(t, filepath.Join(dir, "dnat.nft"), `table ip dockerish {
	chain prerouting { type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8080 dnat to 172.17.0.2:80
	}
}
`)
	open.MustRun(t, "nft", "-f", filepath.Join(dir, "dnat.nft"))
	return w
}

func waitListen(t *testing.T, h *lab.Host, p *lab.Proc, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.WaitListen(ctx, "tcp", port); err != nil {
		t.Fatalf("nothing listens on %d: %v\n%s", port, err, p.Output())
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a certificate for name and its key.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

// probeJSON runs moat probe from the attacker and decodes its report.
func (w *world) probeJSON(t *testing.T, args ...string) (*probe.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := w.attacker.Run(ctx, w.bin, append([]string{"probe", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("moat probe %v: %v\n%s", args, err, out)
	}
	var r probe.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("moat probe --json: %v\n%s", err, out)
	}
	return &r, string(out)
}

func TestProbeLabSmoke(t *testing.T) {
	w := newWorld(t)
	for _, target := range []string{vpsV4, openV4} {
		out, err := w.attacker.Run(context.Background(), w.bin, "probe", target, "--ports", "1-10000", "-v")
		t.Logf("%s: err=%v\n%s", target, err, out)
	}
	out, err := w.attacker.Run(context.Background(), w.bin, "probe", vpsV4, "-c", w.vpsCfg, "--ports", "1-10000", "--names", "app.test", "-v")
	t.Logf("vps with -c: err=%v\n%s", err, out)
}

func TestNmapTiming(t *testing.T) {
	w := newWorld(t)
	for _, target := range []string{vpsV4, openV4} {
		t0 := time.Now()
		out, err := w.attacker.Run(context.Background(), "nmap", "-sT", "-p-", "-T4", "-n", "-Pn", target)
		t.Logf("nmap %s took %v err=%v\n%s", target, time.Since(t0), err, out)
		t0 = time.Now()
		out, err = w.attacker.Run(context.Background(), w.bin, "probe", "--no-udp", target)
		t.Logf("moat %s took %v err=%v\n%s", target, time.Since(t0), err, out)
	}
}
