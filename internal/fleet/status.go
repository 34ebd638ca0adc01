package fleet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Status is `moat fleet status`'s answer.
type Status struct {
	Fleet     string `json:"fleet"`
	Origin    string `json:"origin"`
	Connected bool   `json:"connected"`
	// Server is the NATS server this host talks to.
	Server string `json:"server,omitempty"`
	// Nodes are the NATS nodes this host's node has routes to (embedded
	// mode), itself included.
	Nodes []NodeStatus `json:"nodes,omitempty"`
	// Stream is nil when its state could not be read (no quorum, no
	// connection): StreamError says why.
	Stream      *StreamStatus    `json:"stream,omitempty"`
	StreamError string           `json:"stream_error,omitempty"`
	Consumers   []ConsumerStatus `json:"consumers,omitempty"`
	// Lag is this host's consumer's pending decisions.
	Lag uint64 `json:"lag"`
	// Outbox counts this host's decisions not yet stored by the stream.
	Outbox int `json:"outbox"`
	// OutboxError says why the outbox is in memory only (empty: it is
	// journaled in the state dir and survives a restart).
	OutboxError string `json:"outbox_error,omitempty"`
	// LastHour counts decisions per origin in the last hour (published
	// by this host, applied from the others).
	LastHour map[string]int `json:"last_hour"`
}

// NodeStatus is one NATS node.
type NodeStatus struct {
	Name      string `json:"name"`
	Addr      string `json:"addr,omitempty"`
	Connected bool   `json:"connected"`
}

// StreamStatus is the decisions stream's health.
type StreamStatus struct {
	Messages uint64        `json:"messages"`
	Bytes    uint64        `json:"bytes"`
	Replicas int           `json:"replicas"`
	Leader   string        `json:"leader,omitempty"`
	Peers    []PeerStatus  `json:"peers,omitempty"`
	Current  int           `json:"current"`
	Quorum   bool          `json:"quorum"`
	FirstAge time.Duration `json:"-"`
}

// PeerStatus is one replica of the stream.
type PeerStatus struct {
	Name    string        `json:"name"`
	Current bool          `json:"current"`
	Offline bool          `json:"offline,omitempty"`
	Active  time.Duration `json:"active_ns"`
	Lag     uint64        `json:"lag"`
}

// ConsumerStatus is one host's durable consumer.
type ConsumerStatus struct {
	Name       string    `json:"name"`
	Pending    uint64    `json:"pending"`
	AckPending int       `json:"ack_pending"`
	LastActive time.Time `json:"last_active,omitzero"`
}

// Status reads the stream's and consumers' state (bounded by ctx).
func (cl *Client) Status(ctx context.Context, node *Node) Status {
	s := Status{Fleet: cl.cfg.Name, Origin: cl.cfg.Origin(), Connected: cl.nc.IsConnected(),
		Server: cl.nc.ConnectedUrlRedacted(), Outbox: cl.Pending(), LastHour: cl.tally.LastHour(cl.o.Now())}
	if err := cl.OutboxErr(); err != nil {
		s.OutboxError = err.Error()
	}
	if node != nil {
		s.Server = "embedded " + node.ClientURL()
		s.Nodes = append(s.Nodes, NodeStatus{Name: node.Name(), Addr: node.ClientURL(), Connected: true})
		if rz, err := node.Routez(nil); err == nil {
			seen := map[string]bool{}
			for _, r := range rz.Routes {
				if seen[r.RemoteName] {
					continue
				}
				seen[r.RemoteName] = true
				s.Nodes = append(s.Nodes, NodeStatus{Name: r.RemoteName, Addr: r.IP, Connected: true})
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := cl.js.Stream(ctx, StreamName)
	if err != nil {
		s.StreamError = err.Error()
		cl.o.Metrics.setStatus(s)
		return s
	}
	info := st.CachedInfo()
	ss := &StreamStatus{Messages: info.State.Msgs, Bytes: info.State.Bytes, Replicas: info.Config.Replicas}
	if c := info.Cluster; c != nil {
		ss.Leader = c.Leader
		if c.Leader != "" {
			ss.Current = 1
		}
		for _, p := range c.Replicas {
			ss.Peers = append(ss.Peers, PeerStatus{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: p.Active, Lag: p.Lag})
			if p.Current && !p.Offline {
				ss.Current++
			}
		}
	} else {
		ss.Current = 1
	}
	ss.Quorum = ss.Current > max(ss.Replicas, 1)/2 && (info.Cluster == nil || info.Cluster.Leader != "")
	s.Stream = ss
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		if !strings.HasPrefix(ci.Name, consumerPrefix) {
			continue // an earlier moat's consumer, left behind
		}
		cs := ConsumerStatus{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending}
		if ci.Delivered.Last != nil {
			cs.LastActive = *ci.Delivered.Last
		}
		s.Consumers = append(s.Consumers, cs)
		if ci.Name == ConsumerName(cl.cfg.Origin()) {
			s.Lag = ci.NumPending + uint64(ci.NumAckPending)
		}
	}
	if err := lister.Err(); err != nil && !errors.Is(err, context.Canceled) {
		s.StreamError = "list consumers: " + err.Error()
	}
	slices.SortFunc(s.Consumers, func(a, b ConsumerStatus) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	cl.o.Metrics.setStatus(s)
	return s
}
