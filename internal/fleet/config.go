package fleet

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"syscall"

	"github.com/moat-sh/moat/internal/schema"
)

// Config is moat.yaml's fleet section.
type Config struct {
	// Name is the fleet: hosts of one fleet share bans.
	Name string `yaml:"name"`
	// Host is this host's origin name in the fleet (default: the
	// hostname); it names the subject the host publishes on.
	Host string `yaml:"host"`
	NATS NATS   `yaml:"nats"`
	// Credentials is this host's NATS identity: an NKEY seed file (from
	// `moat fleet keygen`) or a .creds file (JWT and seed). Root-only.
	Credentials string `yaml:"credentials"`
	// Hosts maps every member's origin name to its public NKEY (U…):
	// the embedded node lets each publish under its own origin only.
	Hosts map[string]string `yaml:"hosts"`
	// Share lists the jails whose decisions leave this host ("manual"
	// is `moat ban`'s).
	Share []string `yaml:"share"`
	// Trust lists the origins (globs) whose decisions this host enforces.
	Trust []string `yaml:"trust"`
	// AllowPublicListen lets the NATS listen and route addresses be
	// outside loopback and vpn.ranges: fleet traffic on the public
	// interface, by explicit choice.
	AllowPublicListen bool `yaml:"allow_public_listen"`
	// MaxLag is the consumer lag past which an alert fires (default
	// 10000 decisions).
	MaxLag int `yaml:"max_lag"`
}

// NATS says where the fleet's NATS runs.
type NATS struct {
	// Embedded runs a NATS node inside moat.
	Embedded *Embedded `yaml:"embedded"`
	// URL is an existing NATS deployment's address (nats://host:4222).
	URL string `yaml:"url"`
	// Replicas is the decisions stream's replica count with URL (default
	// 1); the embedded cluster uses 3 with three or more nodes, else 1.
	Replicas int `yaml:"replicas"`
}

// Embedded is the in-process NATS node.
type Embedded struct {
	// Listen is the client address (host:port), a VPN or loopback one.
	Listen  string   `yaml:"listen"`
	Cluster *Cluster `yaml:"cluster"`
}

// Cluster joins the embedded node to the other hosts' nodes.
type Cluster struct {
	Listen string   `yaml:"listen"`
	Routes []string `yaml:"routes"`
	// Secret is a root-only file holding the routes' shared password:
	// without it anyone who reaches the cluster port joins the cluster.
	Secret string `yaml:"secret"`
}

// StreamName is the decisions stream.
const StreamName = "MOAT_DECISIONS"

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidToken reports whether s can be a fleet or origin name: one NATS
// subject token of letters, digits, '-' and '_'.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// Origin returns this host's origin name: Host, else the hostname.
func (c Config) Origin() string {
	if c.Host != "" {
		return c.Host
	}
	h, _ := os.Hostname()
	return h
}

// Shares reports whether decisions of jail ("manual" for moat ban) leave
// this host.
func (c Config) Shares(jail string) bool { return slices.Contains(c.Share, jail) }

// Trusts reports whether this host enforces origin's decisions: never its
// own (it has them already), else when a trust glob matches.
func (c Config) Trusts(origin string) bool {
	if origin == c.Origin() {
		return false
	}
	for _, g := range c.Trust {
		if ok, _ := path.Match(g, origin); ok {
			return true
		}
	}
	return false
}

// Nodes is the number of NATS nodes: the embedded one and its routes, or 0
// with an external URL.
func (c Config) Nodes() int {
	if c.NATS.Embedded == nil {
		return 0
	}
	if c.NATS.Embedded.Cluster == nil {
		return 1
	}
	return 1 + len(c.NATS.Embedded.Cluster.Routes)
}

// Replicas is the decisions stream's replica count.
func (c Config) Replicas() int {
	if c.NATS.Embedded == nil {
		return max(c.NATS.Replicas, 1)
	}
	if c.Nodes() >= 3 {
		return 3
	}
	return 1
}

// Validate checks the section; vpn is vpn.ranges, where (with loopback)
// the NATS addresses must be. It reads the credential files' owner and
// mode: a secret a user can read is refused here, not at run time.
func (c Config) Validate(vpn []netip.Prefix) error {
	var errs []error
	add := func(p, f string, a ...any) { errs = append(errs, schema.Errorf(p, f, a...)) }
	if !ValidToken(c.Name) {
		add("name", "expected a fleet name of letters, digits, '-' or '_', found %q", c.Name)
	}
	if c.Host != "" && !ValidToken(c.Host) {
		add("host", "expected this host's name in the fleet, letters, digits, '-' or '_', found %q", c.Host)
	}
	e, u := c.NATS.Embedded, c.NATS.URL
	switch {
	case e == nil && u == "":
		add("nats", "set nats.embedded (moat runs a NATS node) or nats.url (an existing NATS)")
	case e != nil && u != "":
		add("nats", "set nats.embedded or nats.url, not both")
	}
	checkAddr := func(p, hostport string) {
		h, port, err := net.SplitHostPort(hostport)
		if err != nil {
			add(p, "expected host:port like 100.64.0.1:4222, found %q", hostport)
			return
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			add(p, "port %q is not a port number", port)
			return
		}
		a, err := netip.ParseAddr(h)
		if err != nil {
			add(p, "expected an IP address, found %q (moat never resolves names for the fleet)", h)
			return
		}
		if !c.AllowPublicListen && !privateAddr(a, vpn) {
			add(p, "%s is neither loopback nor in vpn.ranges: fleet traffic would cross the public interface (use a VPN address, or set fleet.allow_public_listen: true if you mean it)", a)
		}
	}
	if e != nil {
		if e.Listen == "" {
			add("nats.embedded.listen", "set the client address, a VPN or loopback one like 100.64.0.1:4222")
		} else {
			checkAddr("nats.embedded.listen", e.Listen)
		}
		if cl := e.Cluster; cl != nil {
			if cl.Listen == "" {
				add("nats.embedded.cluster.listen", "set the cluster address, like 100.64.0.1:6222")
			} else {
				checkAddr("nats.embedded.cluster.listen", cl.Listen)
			}
			for i, r := range cl.Routes {
				p := fmt.Sprintf("nats.embedded.cluster.routes[%d]", i)
				ru, err := url.Parse(r)
				if err != nil || ru.Scheme != "nats" || ru.Host == "" || ru.User != nil {
					add(p, "expected nats://ADDRESS:PORT without credentials, found %q", r)
					continue
				}
				checkAddr(p, ru.Host)
			}
			if cl.Secret == "" {
				add("nats.embedded.cluster.secret", "set a root-only file holding the routes' password (moat fleet keygen writes one): without it anyone reaching the cluster port joins")
			} else if err := RootOnly(cl.Secret); err != nil {
				add("nats.embedded.cluster.secret", "%v", err)
			}
		}
	}
	// Every host signs its decisions with its key and verifies the
	// others' against this list, whichever NATS carries them.
	if len(c.Hosts) == 0 {
		add("hosts", "list every member's public NKEY (moat fleet keygen prints it): decisions are verified against it, and the embedded node admits those only")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Hosts)) {
		k := c.Hosts[name]
		if !ValidToken(name) {
			add("hosts."+name, "expected a host name of letters, digits, '-' or '_'")
		}
		if !validUserKey(k) {
			add("hosts."+name, "expected a public user NKEY (starts with U), found %q", k)
		}
	}
	if _, ok := c.Hosts[c.Origin()]; !ok && ValidToken(c.Origin()) && len(c.Hosts) > 0 {
		add("hosts", "this host (%s) is not listed: it could not sign its decisions (nor connect to its own node)", c.Origin())
	}
	if u != "" {
		ru, err := url.Parse(u)
		if err != nil || (ru.Scheme != "nats" && ru.Scheme != "tls") || ru.Host == "" || ru.User != nil {
			add("nats.url", "expected nats://ADDRESS:PORT (or tls://) without credentials, found %q", u)
		} else {
			checkAddr("nats.url", ru.Host)
		}
	}
	if c.NATS.Replicas < 0 || c.NATS.Replicas > 5 {
		add("nats.replicas", "expected 1 to 5, found %d", c.NATS.Replicas)
	}
	if c.Credentials == "" {
		add("credentials", "set this host's NKEY seed or .creds file (moat fleet keygen writes one)")
	} else if err := RootOnly(c.Credentials); err != nil {
		add("credentials", "%v", err)
	}
	for i, s := range c.Share {
		if s == "" {
			add(fmt.Sprintf("share[%d]", i), "empty jail name")
		}
	}
	for i, g := range c.Trust {
		if _, err := path.Match(g, ""); err != nil {
			add(fmt.Sprintf("trust[%d]", i), "bad glob %q: %v", g, err)
		}
	}
	if c.MaxLag < 0 {
		add("max_lag", "expected a positive count")
	}
	return errors.Join(errs...)
}

// privateAddr: loopback or inside one of the VPN ranges.
func privateAddr(a netip.Addr, vpn []netip.Prefix) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, p := range vpn {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// RootOnly refuses a secret file that anyone but root could read or
// replace: it must be a regular file owned by root, mode 0600 or 0400.
func RootOnly(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist (moat fleet keygen writes one)", p)
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 {
		return fmt.Errorf("%s is not owned by root: chown root:root %s", p, p)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o: a secret must be readable by root only (chmod 600 %s)", p, m, p)
	}
	return nil
}
