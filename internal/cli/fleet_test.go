package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/fleet"
)

func TestPrintFleetStatus(t *testing.T) {
	var out bytes.Buffer
	st := fleet.Status{Fleet: "prod", Origin: "web-1", Connected: true, Server: "embedded nats://100.64.0.1:4222",
		Nodes:     []fleet.NodeStatus{{Name: "web-1"}, {Name: "web-2"}, {Name: "web-3"}},
		Stream:    &fleet.StreamStatus{Messages: 12, Replicas: 3, Leader: "web-2", Current: 2, Quorum: true, Peers: []fleet.PeerStatus{{Name: "web-1", Current: true}, {Name: "web-3", Offline: true}}},
		Consumers: []fleet.ConsumerStatus{{Name: "moat-web-1", Pending: 3}},
		Lag:       3, LastHour: map[string]int{"web-2": 7, "web-1": 1}}
	printFleetStatus(&env{stdout: &out}, st)
	for _, want := range []string{"fleet prod, this host web-1: connected", "nodes (3): web-1, web-2, web-3", "healthy, 12 decisions, replicas 3 (2 current), leader web-2",
		"replica web-3", "OFFLINE", "moat-web-1", "lag 3", "web-2                7"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	out.Reset()
	printFleetStatus(&env{stdout: &out}, fleet.Status{Fleet: "prod", Origin: "web-1", StreamError: "context deadline exceeded"})
	if !strings.Contains(out.String(), "NOT CONNECTED") || !strings.Contains(out.String(), "UNAVAILABLE: context deadline exceeded") {
		t.Errorf("no quorum:\n%s", out.String())
	}
}
