package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// routeUser is the routes' user name; the password is the cluster secret.
const routeUser = "moat-route"

// NodeOptions tune the embedded node.
type NodeOptions struct {
	// Dir holds JetStream's files (the daemon's state dir/fleet).
	Dir string
	Log *slog.Logger
	// MaxStore bounds JetStream's file storage (0: 1 GiB).
	MaxStore int64
}

// Node is the embedded NATS node.
type Node struct {
	*server.Server
}

// StartNode starts c's embedded NATS node: JetStream in o.Dir, the
// members' NKEY users with Permissions, clustered with the routes when
// c names a cluster. It returns once the node accepts clients.
func StartNode(c Config, o NodeOptions) (*Node, error) {
	e := c.NATS.Embedded
	if e == nil {
		return nil, errors.New("fleet: no embedded node configured")
	}
	opts, err := serverOptions(c, o)
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("fleet: start NATS node: %w", err)
	}
	if o.Log != nil {
		s.SetLoggerV2(newNATSLogger(o.Log), false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("fleet: NATS node on %s not ready after 30s (is the address in use or not on this host?)", e.Listen)
	}
	return &Node{s}, nil
}

func serverOptions(c Config, o NodeOptions) (*server.Options, error) {
	e := c.NATS.Embedded
	host, port, err := splitHostPort(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("fleet: nats.embedded.listen: %w", err)
	}
	if o.MaxStore == 0 {
		o.MaxStore = 1 << 30
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	opts := &server.Options{
		ServerName:         c.Origin(),
		Host:               host,
		Port:               port,
		HTTPPort:           0,
		NoSigs:             true,
		NoLog:              o.Log == nil,
		JetStream:          true,
		StoreDir:           o.Dir,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  o.MaxStore,
		MaxPayload:         1 << 20,
		// Connections from a JetStream cluster peer after a partition
		// must not wait for the default two-second backoff alone.
		DisableShortFirstPing: false,
	}
	for name, key := range c.Hosts {
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: key, Permissions: Permissions(c.Name, name)})
	}
	if cl := e.Cluster; cl != nil {
		secret, err := ReadSecret(cl.Secret)
		if err != nil {
			return nil, err
		}
		ch, cp, err := splitHostPort(cl.Listen)
		if err != nil {
			return nil, fmt.Errorf("fleet: nats.embedded.cluster.listen: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: "moat-" + c.Name, Host: ch, Port: cp,
			Username: routeUser, Password: secret, ConnectRetries: -1, PoolSize: -1}
		for _, r := range cl.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("fleet: route %q: %w", r, err)
			}
			u.User = url.UserPassword(routeUser, secret)
			opts.Routes = append(opts.Routes, u)
		}
	}
	return opts, nil
}

// ReadSecret reads a root-only secret file (RootOnly), trimmed.
func ReadSecret(path string) (string, error) {
	if err := RootOnly(path); err != nil {
		return "", fmt.Errorf("fleet: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("fleet: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 16 {
		return "", fmt.Errorf("fleet: %s holds fewer than 16 characters: too weak a secret (moat fleet keygen writes a good one)", path)
	}
	return s, nil
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return h, n, nil
}

// natsLogger sends the node's logs to slog: notices at debug (the node
// is chatty), warnings and errors as such, each message format at most
// once a minute (a route down is retried every second: a log flood).
type natsLogger struct {
	log  *slog.Logger
	mu   *sync.Mutex
	last map[string]time.Time
}

func newNATSLogger(log *slog.Logger) natsLogger {
	return natsLogger{log: log, mu: &sync.Mutex{}, last: map[string]time.Time{}}
}

func (l natsLogger) limited(f string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.last[f]; ok && now.Sub(t) < time.Minute {
		return true
	}
	if len(l.last) > 1000 {
		clear(l.last)
	}
	l.last[f] = now
	return false
}

func (l natsLogger) Noticef(f string, a ...any) { l.log.Debug("nats: " + fmt.Sprintf(f, a...)) }
func (l natsLogger) Warnf(f string, a ...any) {
	if !l.limited(f) {
		l.log.Warn("nats: " + fmt.Sprintf(f, a...))
	}
}
func (l natsLogger) Fatalf(f string, a ...any) { l.log.Error("nats: " + fmt.Sprintf(f, a...)) }
func (l natsLogger) Errorf(f string, a ...any) {
	if !l.limited(f) {
		l.log.Error("nats: " + fmt.Sprintf(f, a...))
	}
}
func (l natsLogger) Debugf(f string, a ...any) {}
func (l natsLogger) Tracef(f string, a ...any) {}
