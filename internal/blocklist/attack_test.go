package blocklist

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestGzipBombRefused: the size bound holds after decompression.
func TestGzipBombRefused(t *testing.T) {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	line := []byte("10.0.0.0/8\n")
	for range 200_000 { // 2.2 MB of text, a few KB compressed
		w.Write(line)
	}
	w.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Encoding", "gzip")
		rw.Write(z.Bytes())
	}))
	defer srv.Close()
	f := &HTTPFeed{URL: srv.URL, Client: srv.Client(), MaxBytes: 64 << 10}
	if _, err := f.Fetch(context.Background(), Validators{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("gzip bomb: %v", err)
	}
}

// TestRedirectOffHTTPSRefused: a redirect to plain http is not followed,
// even with a caller's client.
func TestRedirectOffHTTPSRefused(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.Write([]byte("192.0.2.0/24\n")) }))
	defer plain.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, plain.URL+"/drop.txt", http.StatusFound)
	}))
	defer srv.Close()
	f := &HTTPFeed{URL: srv.URL, Client: srv.Client()}
	if _, err := f.Fetch(context.Background(), Validators{}); err == nil || !strings.Contains(err.Error(), "https only") {
		t.Fatalf("redirect to http: %v", err)
	}
}

// TestSlowBodyTimesOut: a publisher that never finishes its body is cut
// off by the fetch's time bound, and nothing is loaded.
func TestSlowBodyTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Write([]byte("192.0.2.0/24\n"))
		rw.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	sk := &sink{}
	m := New([]Source{{Name: "slow", URL: srv.URL}}, Options{Sink: sk, Log: quiet, Feed: func(s Source) Feed {
		return &HTTPFeed{URL: s.URL, Client: srv.Client(), Timeout: 200 * time.Millisecond}
	}})
	if err := m.Refresh(context.Background(), "slow"); err == nil {
		t.Fatalf("a body that never ended was taken: %s %+v", sk.last(), m.Status())
	}
	if sk.count() != 0 {
		t.Error("a partial body was loaded")
	}
}

// TestEmptyDownloadRefused: an empty 200 (or a comment-only page) from a
// URL keeps the loaded copy; an emptied local file is taken.
func TestEmptyDownloadRefused(t *testing.T) {
	pub := &publisher{}
	pub.set(dropList, `"v1"`, time.Now())
	srv := httptest.NewTLSServer(pub)
	defer srv.Close()
	sk := &sink{}
	m := newTestManager(t, srv, t.TempDir(), Source{Name: "drop", URL: srv.URL}, sk, nil)
	ctx := context.Background()
	if err := m.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	pub.set("; Spamhaus DROP List\n", `"v2"`, time.Now())
	if err := m.Refresh(ctx, "drop"); err == nil || !strings.Contains(err.Error(), "holds no networks") {
		t.Errorf("empty download: %v", err)
	}
	if sk.count() != 1 {
		t.Errorf("an empty download was loaded")
	}

	dir := t.TempDir()
	f := filepath.Join(dir, "local.txt")
	os.WriteFile(f, []byte("192.0.2.0/24\n"), 0o644)
	sk2 := &sink{}
	m2 := newTestManager(t, nil, dir, Source{Name: "local", File: f}, sk2, nil)
	if err := m2.Refresh(ctx, "local"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f, []byte("# nothing blocked for now\n"), 0o644)
	if err := m2.Refresh(ctx, "local"); err != nil || sk2.last() != "[]" {
		t.Errorf("emptied file: %v, loaded %s", err, sk2.last())
	}
}

// TestMetricsDocumented: every metric the manager exposes is in
// docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	m := New([]Source{{Name: "x", URL: "https://lists.example/x"}}, Options{Sink: &sink{}, Log: quiet})
	if err := m.Offer(context.Background(), "x", []byte("192.0.2.0/24\n"), Validators{}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, s := range regexp.MustCompile("(?m)^\\| `(moat_[a-z_]+)`").FindAllSubmatch(doc, -1) {
		documented = append(documented, string(s[1]))
	}
	if len(mfs) < 6 {
		t.Errorf("only %d metrics exposed", len(mfs))
	}
	for _, mf := range mfs {
		if !slices.Contains(documented, mf.GetName()) {
			t.Errorf("%s is exposed but not in docs/metrics.md", mf.GetName())
		}
	}
}
