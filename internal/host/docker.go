package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"
)

// dockerSocket is where the Docker daemon listens.
const dockerSocket = "/var/run/docker.sock"

// PublishedPort is a container port that Docker publishes on the host.
// Docker installs its own NAT rules for these, ahead of the host firewall's
// input chain, so they are reachable even when a firewall seems to block
// them.
type PublishedPort struct {
	ContainerID   string
	Container     string // name, without the leading slash
	Image         string
	HostIP        netip.Addr // unspecified (0.0.0.0 or ::) for every address
	HostPort      uint16
	ContainerPort uint16
	Proto         string // "tcp", "udp" or "sctp"
	Scope         Scope  // of HostIP, see ClassifyAddr
}

// DockerPresent reports whether a Docker API socket (or, under a fixture,
// a stand-in file) exists at <root>/var/run/docker.sock.
func (h *Host) DockerPresent() bool {
	_, err := os.Stat(h.Path(dockerSocket))
	return err == nil
}

// DockerPublished lists the ports running containers publish, from the
// Docker API (GET /containers/json on <root>/var/run/docker.sock, two
// seconds at most). Without a socket it returns (nil, nil): check
// [Host.DockerPresent] to tell "no Docker" from "nothing published".
// Under a fixture, a regular file at that path is read as the API's JSON
// answer.
func (h *Host) DockerPublished(ctx context.Context) ([]PublishedPort, error) {
	sock := h.Path(dockerSocket)
	fi, err := os.Stat(sock)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker: %w", hint(err))
	}
	var body []byte
	if !h.Live() && fi.Mode().IsRegular() {
		if body, err = os.ReadFile(sock); err != nil {
			return nil, fmt.Errorf("docker: %w", err)
		}
	} else if body, err = dockerGet(ctx, sock, "/containers/json"); err != nil {
		return nil, err
	}
	ports, err := parseDockerContainers(body)
	if err != nil {
		return nil, err
	}
	vpn, _ := h.VPNPrefixes() // best effort, as in Listeners
	for i := range ports {
		ports[i].Scope = ClassifyAddr(ports[i].HostIP, vpn)
	}
	return ports, nil
}

// maxDockerAnswer bounds the API answer read into memory.
const maxDockerAnswer = 32 << 20

func dockerGet(ctx context.Context, sock, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker: query %s: %w (is dockerd running?)", sock, hint(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDockerAnswer))
	if err != nil {
		return nil, fmt.Errorf("docker: read %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("docker: GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body[:min(len(body), 256)])))
	}
	return body, nil
}

// parseDockerContainers maps the Docker API's container list to the
// ports published on the host.
func parseDockerContainers(body []byte) ([]PublishedPort, error) {
	var cs []struct {
		ID    string   `json:"Id"`
		Names []string `json:"Names"`
		Image string   `json:"Image"`
		Ports []struct {
			IP          string `json:"IP"`
			PrivatePort uint16 `json:"PrivatePort"`
			PublicPort  uint16 `json:"PublicPort"`
			Type        string `json:"Type"`
		} `json:"Ports"`
	}
	if err := json.Unmarshal(body, &cs); err != nil {
		return nil, fmt.Errorf("docker: decode /containers/json: %w", err)
	}
	var out []PublishedPort
	for _, c := range cs {
		name := c.ID
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		for _, p := range c.Ports {
			if p.PublicPort == 0 {
				continue // exposed, not published
			}
			ip := netip.IPv4Unspecified() // old daemons omit IP for all-addresses
			if p.IP != "" {
				a, err := netip.ParseAddr(p.IP)
				if err != nil {
					return nil, fmt.Errorf("docker: container %s: host IP %q: %w", name, p.IP, err)
				}
				ip = a.Unmap()
			}
			out = append(out, PublishedPort{
				ContainerID: c.ID, Container: name, Image: c.Image,
				HostIP: ip, HostPort: p.PublicPort, ContainerPort: p.PrivatePort,
				Proto: p.Type, Scope: ClassifyAddr(ip, nil),
			})
		}
	}
	return out, nil
}
