package firewall

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	if d := UnifiedDiff("a", "b", "x\ny\n", "x\ny\n"); d != "" {
		t.Fatalf("equal inputs: %q", d)
	}
	a := strings.Join([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}, "\n") + "\n"
	b := strings.Join([]string{"1", "2", "3", "four", "5", "6", "7", "8", "9", "10", "11", "12", "13"}, "\n") + "\n"
	want := `--- live
+++ new
@@ -1,7 +1,7 @@
 1
 2
 3
-4
+four
 5
 6
 7
@@ -10,3 +10,4 @@
 10
 11
 12
+13
`
	if got := UnifiedDiff("live", "new", a, b); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// From nothing: every line added.
	got := UnifiedDiff("live", "new", "", "a\nb\n")
	if got != "--- live\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n" {
		t.Errorf("from empty:\n%s", got)
	}
}
