package probe

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/finding"
	"github.com/moat-sh/moat/internal/sshd"
)

// Layers of the probe's report, in order.
const (
	LayerPorts      = "ports"
	LayerSSH        = "ssh"
	LayerTLS        = "tls"
	LayerHTTP       = "http"
	LayerDatastores = "datastores"
)

// Layers in report order.
var Layers = []string{LayerPorts, LayerSSH, LayerTLS, LayerHTTP, LayerDatastores}

// datastoreServices must never face the internet.
var datastoreServices = map[string]bool{"redis": true, "postgresql": true, "mysql": true, "mongodb": true, "memcached": true, "elasticsearch": true, "docker": true, "etcd": true}

// Judge turns what was seen into results. With an intent every open port,
// SSH, certificate and protected route is held against it; without one
// the results say what an attacker would make of each.
func Judge(r *Report, in *Intent, now time.Time) []finding.Result {
	var out []finding.Result
	add := func(x finding.Result) { out = append(out, x) }
	svc := map[string]*Service{}
	for i := range r.Services {
		s := &r.Services[i]
		svc[fmt.Sprintf("%s/%d", s.Addr, s.Port)] = s
	}
	cfgFix := func(port uint16) string {
		if in != nil {
			return fmt.Sprintf("if it should be public, list %d/tcp under firewall.public in %s; else bind the service to 127.0.0.1 or the VPN, or let moat apply firewall drop it", port, in.Source)
		}
		return "bind the service to 127.0.0.1 or the VPN address, or drop the port in the firewall (moat apply firewall)"
	}
	// Ports.
	for _, h := range r.Hosts {
		for _, p := range h.Open {
			s := svc[fmt.Sprintf("%s/%d", h.Addr, p)]
			what := "unidentified"
			if s != nil {
				what = describe(s)
			}
			subject := fmt.Sprintf("%s tcp/%d", h.Addr, p)
			x := finding.Result{ID: "PR-PORT-001", Layer: LayerPorts, Subject: subject,
				Evidence: []string{fmt.Sprintf("TCP connect to %s port %d completed: %s answers", h.Addr, p, what)}}
			switch {
			case in != nil && in.DeclaredTCP(p):
				x.Status, x.Severity, x.Title = finding.Pass, finding.High, "An open port is declared public"
			case in != nil:
				x.Status, x.Severity, x.Title = finding.Fail, finding.High, "A port is open that moat.yaml does not declare"
				if p == in.SSHPort {
					x.Evidence = append(x.Evidence, fmt.Sprintf("ssh.exposure is %s: SSH should not answer from here", in.SSHExposure))
				}
				x.Fix = cfgFix(p)
			case p == 80 || p == 443:
				x.Status, x.Severity, x.Title = finding.Pass, finding.Medium, "A web port is open"
			case s != nil && s.Name == "ssh":
				x.Status, x.Severity, x.Title = finding.Fail, finding.Low, "SSH is reachable from here"
				x.Fix = "put SSH behind the VPN: ssh.exposure: vpn in moat.yaml, then moat apply"
			default:
				x.Status, x.Severity, x.Title = finding.Fail, finding.Medium, "A port other than the web's is open"
				x.Fix = cfgFix(p)
			}
			add(x)
		}
		if in != nil {
			// A declared port that does not answer is not a risk; say it,
			// unscored, so a typo in firewall.public shows.
			for _, pr := range in.PublicTCP {
				for p := int(pr.From); p <= int(pr.To) && p-int(pr.From) < 16; p++ {
					if st := h.state(uint16(p)); st != Open && st != Unscanned {
						add(finding.Result{ID: "PR-PORT-002", Layer: LayerPorts, Severity: finding.Info, Status: finding.Fail,
							Title: "A declared public port does not answer", Subject: fmt.Sprintf("%s tcp/%d", h.Addr, p),
							Evidence: []string{fmt.Sprintf("port %d is %s from here", p, st)}, Fix: "start its service, or remove it from firewall.public"})
					}
				}
			}
		}
	}
	for _, u := range r.UDP {
		if u.State != "open" {
			continue
		}
		x := finding.Result{ID: "PR-PORT-003", Layer: LayerPorts, Severity: finding.Medium, Subject: fmt.Sprintf("%s udp/%d", u.Addr, u.Port),
			Evidence: []string{fmt.Sprintf("%s probe answered: %s", u.Service, u.Answer)}}
		if strings.Contains(u.Answer, "open resolver") || u.Service == "snmp" {
			x.Severity = finding.High
		}
		if in != nil && in.DeclaredUDP(u.Port) {
			x.Status, x.Title = finding.Pass, "A UDP service answers on a declared port"
		} else {
			x.Status, x.Title = finding.Fail, "A UDP service answers from here"
			x.Fix = fmt.Sprintf("bind it to 127.0.0.1 or the VPN, or list %d/udp under firewall.public if it is meant to be public", u.Port)
		}
		add(x)
	}
	for i := range r.Services {
		s := &r.Services[i]
		subject := fmt.Sprintf("%s tcp/%d", s.Addr, s.Port)
		if s.SSH != nil {
			judgeSSH(s, subject, in, add)
		}
		if s.TLS != nil {
			judgeTLS(s, subject, in, now, add)
		}
		if s.HTTP != nil {
			judgeHTTP(s, subject, in, add)
		}
		if datastoreServices[s.Name] {
			x := finding.Result{ID: "PR-DS-001", Layer: LayerDatastores, Severity: finding.Critical, Subject: subject,
				Title: "A datastore answers without authentication"}
			if s.Datastore != nil {
				x.Evidence = []string{s.Datastore.Evidence}
			}
			if s.Datastore != nil && s.Datastore.Unauthenticated {
				x.Status = finding.Fail
				x.Fix = fmt.Sprintf("bind %s to 127.0.0.1 (or a private address) and require authentication; the firewall must drop tcp/%d from outside", s.Name, s.Port)
			} else {
				x.Status = finding.Pass
			}
			add(x)
			add(finding.Result{ID: "PR-DS-002", Layer: LayerDatastores, Severity: finding.High, Status: finding.Fail, Subject: subject,
				Title: "A datastore is reachable from here", Evidence: []string{describe(s) + " answers on an address reachable from outside"},
				Fix: fmt.Sprintf("bind %s to 127.0.0.1 or the VPN; databases are never a public service", s.Name)})
		}
	}
	return out
}

func judgeSSH(s *Service, subject string, in *Intent, add func(finding.Result)) {
	i := s.SSH
	if in != nil {
		x := finding.Result{ID: "PR-SSH-001", Layer: LayerSSH, Severity: finding.High, Subject: subject,
			Title: "SSH answers from outside the VPN", Evidence: []string{"server says " + i.Version}}
		if !in.SSHPublic() {
			x.Status = finding.Fail
			x.Evidence = append(x.Evidence, "ssh.exposure is "+in.SSHExposure+" in "+in.Source)
			x.Fix = "moat apply firewall (the table drops SSH outside the VPN); check that nothing else (a DNAT, another table) lets it through"
		} else {
			x.Status, x.Title = finding.Pass, "SSH is reachable, as ssh.exposure declares"
		}
		add(x)
	}
	pw := i.PasswordOffered()
	x := finding.Result{ID: "PR-SSH-002", Layer: LayerSSH, Severity: finding.High, Subject: subject, Title: "SSH offers password logins"}
	if len(i.AuthMethods) == 0 {
		x.Status, x.Evidence = finding.Unknown, []string{"no user's methods were learned: " + i.Error}
	} else if len(pw) > 0 {
		x.Status = finding.Fail
		for _, u := range pw {
			x.Evidence = append(x.Evidence, fmt.Sprintf("user %s is offered: %s (after a \"none\" request; no credential sent)", u, strings.Join(i.AuthMethods[u], ",")))
		}
		x.Fix = "ssh.password_authentication: false (the default), then moat apply"
	} else {
		x.Status = finding.Pass
	}
	add(x)
	if len(i.Kex) == 0 {
		return
	}
	weak := finding.Result{ID: "PR-SSH-003", Layer: LayerSSH, Severity: finding.Medium, Subject: subject, Title: "SSH offers weak key exchange", Status: finding.Pass}
	if len(i.WeakKex) > 0 {
		weak.Status, weak.Evidence, weak.Fix = finding.Fail, []string{"KEXINIT offers " + strings.Join(i.WeakKex, ", ")}, "moat apply writes a drop-in with moat's key exchange list"
	}
	add(weak)
	pq := finding.Result{ID: "PR-SSH-004", Layer: LayerSSH, Severity: finding.Low, Subject: subject, Title: "SSH offers no post-quantum key exchange", Status: finding.Pass}
	if len(i.PQKex) == 0 {
		pq.Status, pq.Evidence, pq.Fix = finding.Fail, []string{"KEXINIT: " + strings.Join(i.Kex, ",")}, "upgrade OpenSSH (9.0+ offers sntrup761x25519-sha512, 9.9+ mlkem768x25519-sha256)"
	}
	add(pq)
	hk := finding.Result{ID: "PR-SSH-006", Layer: LayerSSH, Severity: finding.Medium, Subject: subject, Title: "SSH offers a weak host key algorithm", Status: finding.Pass}
	var weakHK []string
	for _, a := range i.HostKeyTypes {
		if sshd.WeakHostKeyAlgorithm(a) {
			weakHK = append(weakHK, a)
		}
	}
	if len(weakHK) > 0 {
		hk.Status, hk.Evidence, hk.Fix = finding.Fail, []string{"KEXINIT host key algorithms: " + strings.Join(weakHK, ", ")}, "offer ed25519 (and rsa-sha2-*) host keys only: moat apply writes the drop-in"
	}
	add(hk)
	tp := finding.Result{ID: "PR-SSH-005", Layer: LayerSSH, Severity: finding.Medium, Subject: subject, Title: "SSH is open to Terrapin (CVE-2023-48795)", Status: finding.Pass}
	if i.Terrapin {
		tp.Status, tp.Evidence, tp.Fix = finding.Fail, []string{"no strict key exchange announced, and chacha20-poly1305 or CBC+EtM offered"}, "upgrade OpenSSH (Debian 12: 1:9.2p1-2+deb12u2 or later)"
	}
	add(tp)
}

func judgeTLS(s *Service, subject string, in *Intent, now time.Time, add func(finding.Result)) {
	t := s.TLS
	var served []string
	for _, h := range t.Handshakes {
		if h.OK {
			for _, n := range h.Names {
				if !slices.Contains(served, n) {
					served = append(served, n)
				}
			}
		}
	}
	if in != nil {
		x := finding.Result{ID: "PR-TLS-001", Layer: LayerTLS, Severity: finding.Medium, Subject: subject, Title: "A certificate names a host that is not a gateway site", Status: finding.Pass}
		var stray []string
		for _, n := range served {
			if !in.Site(n) {
				stray = append(stray, n)
			}
		}
		if len(stray) > 0 {
			x.Status = finding.Fail
			x.Evidence = []string{"certificates served here name " + strings.Join(stray, ", ") + "; gateway.sites: " + strings.Join(in.Sites, ", ")}
			x.Fix = "serve only the gateway's sites on this address: remove the other server's TLS listener, or add the name under gateway.sites"
		}
		add(x)
	}
	for _, h := range t.Handshakes {
		if h.Case == "unknown-name" {
			x := finding.Result{ID: "PR-TLS-002", Layer: LayerTLS, Severity: finding.Medium, Subject: subject, Title: "A certificate is served for an unknown name", Status: finding.Pass}
			if h.OK {
				x.Status = finding.Fail
				x.Evidence = []string{fmt.Sprintf("SNI %s got a certificate for %s", h.SNI, strings.Join(h.Names, ", "))}
				x.Fix = "refuse unknown server names (moat's gateway does); a scanner of the address range learns the names otherwise"
			}
			add(x)
		}
	}
	for _, h := range t.Handshakes {
		if !h.OK || h.NotAfter.IsZero() {
			continue
		}
		x := finding.Result{ID: "PR-TLS-003", Layer: LayerTLS, Severity: finding.High, Subject: subject + " " + strings.Join(h.Names, ","), Title: "A certificate is expired or expires within 14 days", Status: finding.Pass}
		left := h.NotAfter.Sub(now)
		if left < 14*24*time.Hour {
			x.Status = finding.Fail
			x.Evidence = []string{"not after " + h.NotAfter.UTC().Format(time.RFC3339)}
			x.Fix = "renew it (moat's gateway renews ACME certificates 30 days ahead)"
			if left > 0 {
				x.Severity = finding.Medium
			}
		}
		add(x)
		break
	}
	old := finding.Result{ID: "PR-TLS-004", Layer: LayerTLS, Severity: finding.Medium, Subject: subject, Title: "TLS 1.0 or 1.1 is accepted", Status: finding.Pass}
	var olds []string
	for _, v := range t.Versions {
		if v == "TLS1.0" || v == "TLS1.1" {
			olds = append(olds, v)
		}
	}
	if len(olds) > 0 {
		old.Status, old.Evidence, old.Fix = finding.Fail, []string{"handshakes completed with " + strings.Join(olds, ", ")}, "accept TLS 1.2 and 1.3 only"
	}
	if len(t.Versions) > 0 {
		add(old)
	}
	ws := finding.Result{ID: "PR-TLS-005", Layer: LayerTLS, Severity: finding.Medium, Subject: subject, Title: "A weak cipher suite is accepted", Status: finding.Pass}
	if len(t.WeakSuites) > 0 {
		ws.Status, ws.Evidence, ws.Fix = finding.Fail, []string{"offered only weak suites, the server chose " + strings.Join(t.WeakSuites, ", ")}, "offer ECDHE suites with AEAD ciphers only"
	}
	if len(t.Versions) > 0 {
		add(ws)
	}
}

func judgeHTTP(s *Service, subject string, in *Intent, add func(finding.Result)) {
	h := s.HTTP
	fp := finding.Result{ID: "PR-HTTP-001", Layer: LayerHTTP, Severity: finding.Low, Subject: subject, Title: "Headers name the server software and its version", Status: finding.Pass}
	var fps []string
	for _, k := range []string{"Server", "X-Powered-By", "X-Aspnet-Version", "X-Generator"} {
		if v := h.Fingerprint[k]; v != "" && (k != "Server" || strings.ContainsAny(v, "0123456789")) {
			fps = append(fps, k+": "+v)
		}
	}
	if len(fps) > 0 {
		fp.Status, fp.Evidence, fp.Fix = finding.Fail, fps, "hide versions (nginx: server_tokens off; moat's gateway strips them)"
	}
	add(fp)
	uh := finding.Result{ID: "PR-HTTP-002", Layer: LayerHTTP, Severity: finding.Medium, Subject: subject, Title: "An unknown Host gets content (a default site)", Status: finding.Pass}
	if u := h.UnknownHost; u.Status >= 200 && u.Status < 400 {
		uh.Status = finding.Fail
		uh.Evidence = []string{fmt.Sprintf("Host: %s → %d, %d bytes%s", UnknownName, u.Status, u.BodyLen, titleNote(u.Title))}
		uh.Fix = "answer unknown hosts with nothing (moat's gateway closes or 404s them); remove the default site"
	}
	add(uh)
	for _, pa := range h.Paths {
		if pa.Route != "" {
			x := finding.Result{ID: "PR-HTTP-004", Layer: LayerHTTP, Severity: finding.High, Subject: subject + " " + pa.Route,
				Title: "A protected route answers a stranger differently from a missing path", Status: finding.Pass,
				Evidence: []string{fmt.Sprintf("%s%s → %s; missing path → %s; timing: median %v vs %v (a statistic, not a verdict)", pa.Host, pa.Path, statusText(pa.HTTPAnswer), statusText(h.Missing), pa.Median.Round(time.Microsecond), h.Missing.Median.Round(time.Microsecond))}}
			if pa.Distinguishable() {
				x.Status = finding.Fail
				x.Evidence = append(x.Evidence, pa.Differences...)
				x.Fix = "deny: notfound on the route, so a refused request gets the site's own 404"
				if in != nil {
					for _, r := range in.Routes {
						if r.Site+r.Path == pa.Route && r.Deny == "drop" {
							x.Severity = finding.Low
							x.Evidence = append(x.Evidence, "the route declares deny: drop, which closes the connection: a stranger sees the path exists")
						}
					}
				}
			}
			add(x)
			continue
		}
		if !pa.Distinguishable() {
			continue
		}
		x := finding.Result{ID: "PR-HTTP-003", Layer: LayerHTTP, Severity: finding.Medium, Subject: subject + " " + pa.Path, Status: finding.Fail,
			Title:    "An admin or secret path answers differently from a missing path",
			Evidence: append([]string{fmt.Sprintf("%s → %s%s", pa.Path, statusText(pa.HTTPAnswer), titleNote(pa.Title))}, pa.Differences...),
			Fix:      "serve it only behind an allowlist (a gateway route with allow: [vpn]) that answers strangers like a missing path"}
		if (pa.Path == "/.git/config" || pa.Path == "/.env") && pa.Status == 200 {
			x.Severity = finding.High
		}
		add(x)
	}
}

func titleNote(t string) string {
	if t == "" {
		return ""
	}
	return fmt.Sprintf(" (title %q)", t)
}

// describe names a service in a few words.
func describe(s *Service) string {
	d := s.Name
	if s.Product != "" {
		d += " (" + s.Product
		if s.Version != "" {
			d += " " + s.Version
		}
		d += ")"
	}
	return d
}
