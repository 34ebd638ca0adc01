package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/config"
)

func TestCreatableDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o600)
	for path, want := range map[string]string{
		dir:                             "",
		filepath.Join(dir, "a", "b"):    "",
		filepath.Join(file, "sub"):      "is not a directory",
		filepath.Join(file, "sub", "x"): "is not a directory",
	} {
		err := creatableDir(path)
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("the check made a directory: it must change nothing")
	}
}

// TestWarningsArePlaced: warnings name file:line:col like errors, and say
// "warning:" so a reader (and the daemon's log) tells them apart.
func TestWarningsArePlaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "moat.yaml")
	os.WriteFile(path, []byte("alerts:\n  notifiers:\n    mail:\n      type: email\n      smtp: smtp.example.com:587\n      username: u@example.com\n      token_file: "+dir+"/none\n      from: moat@example.com\n      to: [ops@example.com]\n"), 0o600)
	c, warns, err := Load(path, true, Options{})
	if err != nil || c == nil {
		t.Fatalf("load: %v", err)
	}
	want := path + ":7:19: warning: alerts.notifiers.mail.token_file: open " + dir + "/none"
	found := false
	for _, w := range warns {
		found = found || strings.HasPrefix(w.String(), want)
	}
	if !found {
		t.Errorf("got  %v\nwant %s…", warns, want)
	}
	// Defaults (no file) need nothing from the host; the only warning they
	// may get is where sshd's log comes from on this host.
	warns, errs := Check(config.Default(), Options{})
	for _, w := range warns {
		if w.Path != "guard.jails.sshd" {
			t.Errorf("defaults: %v", w)
		}
	}
	if len(errs) != 0 {
		t.Errorf("defaults: %v", errs)
	}
}
