package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func alertConfig(t *testing.T, okURL, badURL string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "moat.yaml")
	src := fmt.Sprintf(`alerts:
  notifiers:
    phone:
      type: ntfy
      url: %s/moat-alerts
    ops:
      type: webhook
      url: %s/hook
  routes:
    - events: [ban]
      notifiers: [phone]
`, okURL, badURL)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAlertTest(t *testing.T) {
	var got []string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Header.Get("X-Title")+" | "+string(b))
		fmt.Fprint(w, `{"id":"hTc0aZmW","event":"message"}`)
	}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such hook", http.StatusNotFound)
	}))
	defer bad.Close()
	cfg := alertConfig(t, ok.URL, bad.URL)

	var stdout, stderr bytes.Buffer
	if code := Main([]string{"alert", "test", "-c", cfg, "phone"}, nil, &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "phone") || !strings.Contains(out, `ok      HTTP 200: {"id":"hTc0aZmW","event":"message"}`) {
		t.Errorf("output:\n%s", out)
	}
	if len(got) != 1 || !strings.Contains(got[0], "Test alert from moat | If you read this, moat reaches you through notifier \"phone\".") {
		t.Errorf("receiver got %q", got)
	}

	stdout.Reset()
	if code := Main([]string{"alert", "test", "-c", cfg}, nil, &stdout, &stderr); code != ExitRuntime {
		t.Fatalf("a failing receiver must exit 1, got %d\n%s", code, stdout.String())
	}
	if out := stdout.String(); !strings.Contains(out, "ops") || !strings.Contains(out, "FAILED  HTTP 404: no such hook") {
		t.Errorf("output:\n%s", out)
	}

	stderr.Reset()
	if code := Main([]string{"alert", "test", "-c", cfg, "pager"}, nil, &stdout, &stderr); code != ExitUsage || !strings.Contains(stderr.String(), `unknown notifier "pager": configured are ops, phone`) {
		t.Errorf("unknown notifier: exit %d, %s", code, stderr.String())
	}
	if code := Main([]string{"alert"}, nil, &stdout, &stderr); code != ExitUsage {
		t.Errorf("bare alert: exit %d", code)
	}
}

func TestAlertTestNoNotifiers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moat.yaml")
	os.WriteFile(path, []byte("alerts: {}\n"), 0o600)
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"alert", "test", "-c", path}, nil, &stdout, &stderr); code != ExitUsage || !strings.Contains(stderr.String(), "no notifiers configured") {
		t.Errorf("exit %d, %s", code, stderr.String())
	}
}
