package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// layers do not import each other: where one needs another, the caller
// declares an interface and the daemon (or the CLI) connects them. Shared
// mechanisms (schema, host, sshd, ruleset, vpn, geo, change, control, lab)
// may be imported by any layer.
var layers = []string{"audit", "harden", "firewall", "logwatch", "filter", "jail", "ban", "gateway", "alert"}

// banned package names, by the house rules.
var bannedNames = []string{"util", "utils", "common", "types", "helpers", "misc"}

func TestLayersDoNotImportEachOther(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-json", "github.com/moat-sh/moat/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const prefix = "github.com/moat-sh/moat/internal/"
	dec := json.NewDecoder(strings.NewReader(string(out)))
	isLayer := map[string]bool{}
	for _, l := range layers {
		isLayer[l] = true
	}
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Name       string
			Doc        string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		for _, b := range bannedNames {
			if p.Name == b {
				t.Errorf("%s: package name %q is not allowed; name it for its subject", p.ImportPath, p.Name)
			}
		}
		if p.Doc == "" {
			t.Errorf("%s: no package doc comment", p.ImportPath)
		}
		self := strings.TrimPrefix(p.ImportPath, prefix)
		self, _, _ = strings.Cut(self, "/")
		if !isLayer[self] {
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, prefix)
			if !ok {
				continue
			}
			dep, _, _ = strings.Cut(dep, "/")
			if dep != self && isLayer[dep] {
				t.Errorf("layer %s imports layer %s (%s): declare an interface and let internal/daemon connect them", self, dep, imp)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list saw only %d packages", seen)
	}
}
