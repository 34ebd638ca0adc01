package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
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

// The CLI speaks the control protocol through internal/control, whose
// types are the protocol's: of the daemon it uses only what starts it
// (moat run) and what reads its state when it is down. A new use of the
// daemon's internals from the CLI fails here; move the type to control.
var cliMayUseDaemon = map[string]bool{"Run": true, "Options": true, "Status": true, "OfflineStatus": true, "AuditOptions": true}

func TestCLIUsesTheControlProtocolNotTheDaemon(t *testing.T) {
	const daemonPath = `"github.com/moat-sh/moat/internal/daemon"`
	files, err := filepath.Glob("../../internal/cli/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CLI sources: %v", err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		name := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == daemonPath {
				name = "daemon"
				if imp.Name != nil {
					name = imp.Name.Name
				}
			}
		}
		if name == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == name && !cliMayUseDaemon[sel.Sel.Name] {
				t.Errorf("%s: the CLI uses daemon.%s: the control protocol's types live in internal/control", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	// And the protocol package stands alone.
	out, err := exec.Command("go", "list", "-deps", "github.com/moat-sh/moat/internal/control").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/moat-sh/moat/internal/daemon" {
			t.Errorf("internal/control links the daemon")
		}
	}
}
