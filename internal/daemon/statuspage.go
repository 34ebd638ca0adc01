package daemon

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/statuspage"
	"github.com/moat-sh/moat/internal/tailscale"
)

// statusPage is the daemon's side of the status page: the page's data
// source, and the generation that moves with every ban event so the page
// is rebuilt when, and only when, something changed (or a refresh
// interval passed: the audit and the host's conditions change without
// a ban).
type statusPage struct {
	d   *Daemon
	srv *statuspage.Server
	gen atomic.Uint64
	geo statuspage.Country

	mu     sync.Mutex
	win    *statuspage.Window // the last week of bans, followed entry by entry
	lastID int64              // the last history entry in win

	auditVersion int // of d.audits, that audit was derived from
	audit        statuspage.AuditView
}

// bump marks the ban data changed; nil-safe for a daemon without a page.
func (p *statusPage) bump() {
	if p != nil {
		p.gen.Add(1)
	}
}

// Generation implements statuspage.Source.
func (p *statusPage) Generation() uint64 { return p.gen.Load() }

// Snapshot implements statuspage.Source: the status `moat status --json`
// prints, the ban history of the last week, and the audit's history.
func (p *statusPage) Snapshot(ctx context.Context, now time.Time) (*statuspage.Data, error) {
	st := p.d.statusWith(ctx, p.firewall)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.follow(ctx, now); err != nil {
		return nil, err
	}
	data := &statuspage.Data{Status: st, Bans: p.win.View(now), VPN: statusPageVPN(&st)}
	h, version, err := p.d.audits.versioned(p.d.o.StateDir)
	if err != nil {
		// The rest of the page stands; the status carries the error.
		p.d.log.Debug("status page: audit history", "err", err)
	}
	if version != p.auditVersion {
		p.audit, p.auditVersion = auditView(h), version
	}
	data.Audit = p.audit
	return data, nil
}

// firewall reads the firewall's status through the metrics' cache (at
// most once per fwCacheTTL): it runs nft, the dearest part of a page.
func (p *statusPage) firewall(ctx context.Context) (*firewall.Status, string) {
	if p.d.met == nil {
		return readFirewall(ctx)
	}
	fw, err := p.d.met.fw.get()
	if err != nil {
		return nil, err.Error()
	}
	return fw, ""
}

// follow adds the history entries recorded since the last look to the
// window and lets the old ones go. The first look reads the whole week.
func (p *statusPage) follow(ctx context.Context, now time.Time) error {
	if p.win == nil {
		p.win = statuspage.NewWindow(p.geo)
	}
	entries, err := p.d.store.HistoryAfter(ctx, p.lastID, now.Add(-statuspage.Span))
	if err != nil {
		return err
	}
	for _, e := range entries {
		p.win.Add(statuspage.Record{Prefix: e.Prefix, Jail: e.Jail, Reason: e.Reason, Origin: string(e.Origin),
			Created: e.Created, Expires: e.Expires})
		p.lastID = e.ID
	}
	p.win.Advance(now)
	return nil
}

// statusPageVPN is the WireGuard interface and peers of the status, as the
// page shows them; nil ("no VPN layer data") when moat manages none.
func statusPageVPN(st *Status) *statuspage.VPNView {
	if st == nil || st.VPN == nil {
		return nil
	}
	v := &statuspage.VPNView{Interface: st.VPN.Interface, Peers: []statuspage.Peer{}}
	for _, p := range st.VPN.Peers {
		v.Peers = append(v.Peers, statuspage.Peer{
			Name: p.Name, Addresses: p.Addresses, Endpoint: p.Endpoint, LastHandshake: p.LastHandshake,
			RxBytes: uint64(max(p.RxBytes, 0)), TxBytes: uint64(max(p.TxBytes, 0)),
		})
	}
	return v
}

// auditView is the drift audit's history for the page: the score over
// time (thinned to what a chart shows) and the last run's high and
// critical findings.
func auditView(h auditHistory) statuspage.AuditView {
	v := statuspage.AuditView{Points: []statuspage.ScorePoint{}, Findings: []statuspage.Finding{}}
	for _, r := range h.Runs {
		v.Points = append(v.Points, statuspage.ScorePoint{Time: r.Time, Score: r.Score})
	}
	v.Points = statuspage.Thin(v.Points)
	if n := len(h.Runs); n > 0 {
		for _, f := range h.Runs[n-1].Urgent {
			v.Findings = append(v.Findings, statuspage.Finding{ID: f.ID, Severity: f.Severity.String(),
				Title: f.Title, Subject: f.Subject, Fix: f.Fix})
		}
		// Critical first, as the terminal shows them.
		sortFindings(v.Findings)
	}
	return v
}

func sortFindings(fs []statuspage.Finding) {
	rank := func(s string) int {
		if s == audit.Critical.String() {
			return 0
		}
		return 1
	}
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && rank(fs[j].Severity) < rank(fs[j-1].Severity); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// startStatusPage serves the page when moat.yaml has a status_page
// section. Its address was checked with the config (loopback or
// vpn.ranges); each connection's source is checked again against the
// same rule.
func (d *Daemon) startStatusPage(ctx context.Context, cfg *config.Config) error {
	c := cfg.StatusPage
	if c == nil {
		return nil
	}
	u, err := d.statusPageUpdate(ctx, cfg)
	if err != nil {
		return err
	}
	p := &statusPage{d: d}
	if db := geoDB(cfg, d.log); db != nil {
		go func() {
			<-ctx.Done()
			db.Close()
		}()
		p.geo = db
	}
	srv, err := statuspage.New(statuspage.Options{Config: *c, Token: u.Token, Cert: u.Cert, Source: p,
		Allow: u.Allow, VPN: u.VPN, Log: d.log})
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	p.srv = srv
	d.page = p
	// Read the week's history now, not on the first visit.
	d.goRun(ctx, "status page history", func(ctx context.Context) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.follow(ctx, time.Now())
	})
	d.goRun(ctx, "status page", srv.Run)
	d.goRun(ctx, "status page certificate", d.renewStatusPageCert)
	return nil
}

// certRenewEvery is how often the page's certificate files are read
// again (and `tailscale cert` asked: it renews within a third of the
// certificate's life).
const certRenewEvery = 24 * time.Hour

// renewStatusPageCert keeps a certificate from files or from Tailscale
// fresh without a reload.
func (d *Daemon) renewStatusPageCert(ctx context.Context) error {
	t := time.NewTicker(certRenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		d.reloading.Lock()
		d.mu.Lock()
		c := d.cfg.StatusPage
		d.mu.Unlock()
		if c != nil && c.TLS != nil && !c.TLS.SelfSigned {
			if cert, err := d.statusPageCert(ctx, c); err != nil {
				d.log.Warn("status page: certificate not renewed; the current one stays", "err", err)
			} else if cur := d.page.srv.Cert(); cur != nil && cur.Fingerprint != cert.Fingerprint {
				d.page.srv.Renewed(cert)
				d.log.Info("status page: certificate renewed", "file", cert.File, "not_after", cert.NotAfter, "sha256", cert.Fingerprint)
			}
		}
		d.reloading.Unlock()
	}
}

// statusPageCert loads status_page.tls's certificate. For tailscale:
// tailscaled names the node (its MagicDNS name) and `tailscale cert`
// writes that name's certificate into the state directory.
func (d *Daemon) statusPageCert(ctx context.Context, c *statuspage.Config) (*statuspage.Cert, error) {
	if c.TLS == nil || !c.TLS.Tailscale {
		cert, made, err := statuspage.LoadCert(c.TLS, c.Listen, d.o.StateDir, time.Now())
		if made {
			d.log.Warn("status page: made a self-signed certificate: compare its fingerprint with the browser's before trusting it",
				"file", cert.File, "sha256", cert.Fingerprint)
		}
		return cert, err
	}
	cli := d.o.tailscaleCLI
	if cli == "" {
		cli = "tailscale"
	}
	tc := &tailscale.Client{Socket: d.o.tailscaleSocket, CLI: cli}
	if d.o.tailscaleSocket != "" {
		tc.CLI = "-"
	}
	st, err := tc.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("status_page.tls.tailscale: %w", err)
	}
	name := st.DNSName()
	if name == "" || !st.Running() {
		return nil, errors.New("status_page.tls.tailscale: tailscale is not up or has no MagicDNS name (tailscale up; enable MagicDNS and HTTPS certificates in the admin console)")
	}
	certPath, keyPath := filepath.Join(d.o.StateDir, statuspage.TailscaleCert), filepath.Join(d.o.StateDir, statuspage.TailscaleKey)
	if err := os.MkdirAll(d.o.StateDir, 0o700); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, cli, "cert", "--cert-file", certPath, "--key-file", keyPath, name).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("status_page.tls.tailscale: %s cert %s: %w: %s", cli, name, err, bytes.TrimSpace(out))
	}
	// The key is moat's alone, whatever mode tailscale wrote it with.
	if err := os.Chmod(keyPath, 0o600); err != nil {
		return nil, fmt.Errorf("status_page.tls.tailscale: %w", err)
	}
	cert, _, err := statuspage.LoadCert(&statuspage.TLS{CertFile: certPath, KeyFile: keyPath}, c.Listen, d.o.StateDir, time.Now())
	return cert, err
}

// statusPageUpdate reads what cfg's status_page needs: the token, the
// certificate (made, for self_signed, on first use), and the access
// rules of cfg's VPN.
func (d *Daemon) statusPageUpdate(ctx context.Context, cfg *config.Config) (statuspage.Update, error) {
	c := cfg.StatusPage
	u := statuspage.Update{Config: *c, Allow: cfg.VPN.AllowedSource, VPN: cfg.VPN.Contains}
	if c.TokenFile != "" {
		t, err := statuspage.ReadToken(c.TokenFile)
		if err != nil {
			return u, err
		}
		u.Token = t
	}
	cert, err := d.statusPageCert(ctx, c)
	if err != nil {
		return u, err
	}
	u.Cert = cert
	return u, nil
}

// prepareStatusPage readies a changed status_page section for a reload:
// the new token and certificate read, a moved listener bound. Adding or
// removing the section needs a restart. commit (which cannot fail) puts
// it in force; abort undoes the preparation of a refused reload.
func (d *Daemon) prepareStatusPage(ctx context.Context, cur *config.Config) (commit, abort func(), err error) {
	nop := func() {}
	if (d.page == nil) != (cur.StatusPage == nil) {
		return nil, nil, errors.New("status_page: adding or removing the section needs a restart of moat run")
	}
	if d.page == nil {
		return nop, nop, nil
	}
	// Read again even when the section is unchanged: the token file may
	// hold a new token, a certificate file a renewed certificate.
	u, err := d.statusPageUpdate(ctx, cur)
	if err != nil {
		return nil, nil, err
	}
	return d.page.srv.Prepare(u)
}

// StatusPageInfo is the status page in `moat status`: its address and,
// over TLS, the certificate's fingerprint to compare with the browser's.
type StatusPageInfo struct {
	URL string `json:"url"`
	// Listening is false while the address is not up (the VPN not yet).
	Listening bool   `json:"listening"`
	TLS       string `json:"tls,omitempty"` // "self-signed" or the certificate file
	SHA256    string `json:"sha256,omitempty"`
	NotAfter  string `json:"not_after,omitempty"`
}

func (p *statusPage) info() *StatusPageInfo {
	if p == nil || p.srv == nil {
		return nil
	}
	p.d.mu.Lock()
	c := p.d.cfg.StatusPage
	p.d.mu.Unlock()
	if c == nil {
		return nil
	}
	i := &StatusPageInfo{URL: "http://" + c.Listen + "/", Listening: p.srv.Listening() != ""}
	if cert := p.srv.Cert(); cert != nil {
		i.URL = "https://" + c.Listen + "/"
		i.TLS, i.SHA256, i.NotAfter = cert.File, cert.Fingerprint, cert.NotAfter.UTC().Format(time.DateOnly)
		if cert.SelfSigned {
			i.TLS = "self-signed"
		}
	}
	return i
}

// offlineStatusPage is the self-signed certificate moat made, read from
// the state directory while no daemon answers: its fingerprint can be
// checked before the page is opened.
func offlineStatusPage(stateDir string) *StatusPageInfo {
	b, err := os.ReadFile(filepath.Join(stateDir, statuspage.SelfSignedCert))
	if err != nil {
		return nil
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	return &StatusPageInfo{URL: "(moat run is not running)", TLS: "self-signed", SHA256: statuspage.Fingerprint(c.Raw),
		NotAfter: c.NotAfter.UTC().Format(time.DateOnly)}
}

func writeStatusPage(w io.Writer, i *StatusPageInfo) {
	if i == nil {
		return
	}
	state := ""
	if !i.Listening && strings.HasPrefix(i.URL, "http") {
		state = " (not listening yet: is the address up?)"
	}
	fmt.Fprintf(w, "\nSTATUS PAGE  %s%s\n", i.URL, state)
	if i.SHA256 != "" {
		fmt.Fprintf(w, "  certificate %s until %s, SHA-256 %s\n", i.TLS, i.NotAfter, i.SHA256)
	}
}
