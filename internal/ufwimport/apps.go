package ufwimport

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Apps are ufw's application profiles: name → the ports it opens.
type Apps map[string][]appPorts

type appPorts struct{ ports, proto string } // proto "any" for both

// ReadApps reads the profiles under dir (/etc/ufw/applications.d); a
// missing dir is no profiles. Files are INI: [Name] with ports=80,443/tcp,
// 51413 (tcp and udp) or several specs joined by '|'.
func ReadApps(dir string) (Apps, error) {
	apps := Apps{}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return apps, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read application profiles: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("read application profiles: %w", err)
		}
		parseApps(string(data), apps)
	}
	return apps, nil
}

func parseApps(text string, apps Apps) {
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case section != "":
			k, v, ok := strings.Cut(line, "=")
			if !ok || strings.TrimSpace(k) != "ports" {
				continue
			}
			var ps []appPorts
			for _, spec := range strings.Split(strings.TrimSpace(v), "|") {
				pt, proto, _ := strings.Cut(spec, "/")
				if _, err := splitPorts(pt); err != nil {
					ps = nil
					break
				}
				if proto == "" {
					proto = "any"
				}
				ps = append(ps, appPorts{pt, proto})
			}
			if ps != nil {
				apps[section] = ps
			}
		}
	}
}
