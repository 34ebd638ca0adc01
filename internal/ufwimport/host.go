package ufwimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ReadHost reads ufw's own files under root ("": /): user.rules and
// user6.rules, the default policies in /etc/default/ufw and ENABLED in
// /etc/ufw/ufw.conf.
func ReadHost(root string) (Input, error) {
	in := Input{}
	var srcs []string
	for _, f := range []struct {
		path string
		v6   bool
	}{{"/etc/ufw/user.rules", false}, {"/etc/ufw/user6.rules", true}} {
		p := filepath.Join(root, f.path)
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) && f.v6 {
			continue
		}
		if err != nil {
			return in, fmt.Errorf("read ufw's rules: %w (hint: is ufw installed? moat import ufw FILE reads saved ufw status verbose output)", err)
		}
		rs, err := ReadRules(bytes.NewReader(data), f.v6)
		if err != nil {
			return in, fmt.Errorf("%s: %w", p, err)
		}
		in.Rules = append(in.Rules, rs...)
		srcs = append(srcs, p)
	}
	in.Source = strings.Join(srcs, ", ")
	if kv, err := readShellVars(filepath.Join(root, "/etc/default/ufw")); err == nil {
		in.Policies = Policies{
			Incoming: policy(kv["DEFAULT_INPUT_POLICY"]),
			Outgoing: policy(kv["DEFAULT_OUTPUT_POLICY"]),
			Routed:   policy(kv["DEFAULT_FORWARD_POLICY"]),
		}
	}
	if kv, err := readShellVars(filepath.Join(root, "/etc/ufw/ufw.conf")); err == nil {
		on := strings.EqualFold(kv["ENABLED"], "yes")
		in.Active = &on
	}
	return in, nil
}

func policy(s string) string {
	switch strings.ToUpper(s) {
	case "DROP":
		return "deny"
	case "ACCEPT":
		return "allow"
	case "REJECT":
		return "reject"
	}
	return strings.ToLower(s)
}

// readShellVars reads NAME=value lines, quotes removed.
func readShellVars(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			kv[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return kv, nil
}

// ReadFile reads a saved user.rules / user6.rules file (it has "###
// tuple ###" lines) or `ufw status verbose` output.
func ReadFile(name string, data []byte, apps Apps) (Input, error) {
	in := Input{Source: name}
	if bytes.Contains(data, []byte("### tuple ###")) || bytes.Contains(data, []byte("*filter")) {
		rs, err := ReadRules(bytes.NewReader(data), bytes.Contains(data, []byte("ufw6-")))
		if err != nil {
			return in, fmt.Errorf("%s: %w", name, err)
		}
		in.Rules = rs
		return in, nil
	}
	st, err := ReadStatus(bytes.NewReader(data), apps)
	if err != nil {
		return in, fmt.Errorf("%s: %w", name, err)
	}
	in.Rules, in.Policies, in.Active = st.Rules, st.Policies, &st.Active
	return in, nil
}
