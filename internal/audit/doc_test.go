package audit

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/checks.md from the catalog")

// checksDoc renders the catalog as the reference page.
func checksDoc() string {
	var b strings.Builder
	b.WriteString("# moat audit: the checks\n\n")
	b.WriteString("Generated from `internal/audit/catalog.go` (`go test ./internal/audit -run TestChecksDoc -update`).\n")
	b.WriteString("IDs are stable. CIS items refer to the CIS Debian Linux 12 Benchmark v1.1.0; Lynis IDs to Lynis 3.x tests.\n")
	b.WriteString("The severity is the default; some checks raise or lower it with what they find (e.g. a password login offered\n")
	b.WriteString("from the internet is critical, from the VPN only high).\n\n")
	b.WriteString("Scoring: every pass or fail weighs by its severity (critical 10, high 6, medium 3, low 1, info 0); a layer scores\n")
	b.WriteString("100 × passed weight ÷ evaluated weight, rounded down, and the host the same ratio over all results. n/a and unknown\n")
	b.WriteString("results are not evaluated.\n\n")
	b.WriteString("\"n/a when\" says where a check does not apply and reports n/a with the reason instead of passing or failing:\n")
	b.WriteString("on a host without sshd every SSH check is n/a (and GRD-001 drops to low); inside a container the clock, swap and\n")
	b.WriteString("kernel checks are n/a (the host owns them); checks that need the live host are n/a under `--root` unless the\n")
	b.WriteString("fixture carries a capture of what they read.\n")
	ids := make([]string, 0, len(catalog))
	for id := range catalog {
		ids = append(ids, id)
	}
	rank := map[string]int{}
	for i, l := range Layers {
		rank[l] = i
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := catalog[ids[i]], catalog[ids[j]]
		if rank[a.Layer] != rank[b.Layer] {
			return rank[a.Layer] < rank[b.Layer]
		}
		return ids[i] < ids[j]
	})
	layer := ""
	for _, id := range ids {
		d := catalog[id]
		if d.Layer != layer {
			layer = d.Layer
			fmt.Fprintf(&b, "\n## %s\n\n| ID | check | severity | CIS | Lynis | fix | n/a when |\n| --- | --- | --- | --- | --- | --- | --- |\n", layer)
		}
		na := notApplicable[id]
		if na == "" {
			na = "always applies"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", id, d.Title, d.Severity, d.Anchors.CIS, d.Anchors.Lynis, strings.ReplaceAll(d.Fix, "|", "\\|"), strings.ReplaceAll(na, "|", "\\|"))
	}
	return b.String()
}

func TestChecksDoc(t *testing.T) {
	const path = "../../docs/checks.md"
	want := checksDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/checks.md is out of date with the catalog: run go test ./internal/audit -run TestChecksDoc -update")
	}
	for id := range notApplicable {
		if _, ok := catalog[id]; !ok {
			t.Errorf("notApplicable names %s, which is not in the catalog", id)
		}
	}
	for id, d := range catalog {
		if d.Title == "" || d.Layer == "" {
			t.Errorf("%s: incomplete", id)
		}
		if d.Severity > Info && d.Fix == "" {
			t.Errorf("%s: a check that can fail needs a fix", id)
		}
	}
}
