package sshd

import (
	"context"
	"slices"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in       string
		maj, min int
		portable string
		raw      string
		err      bool
	}{
		{in: "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024\n", maj: 9, min: 2, portable: "p1",
			raw: "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024"},
		{in: "OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026", maj: 9, min: 2, raw: "OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026"},
		{in: "unknown option -- V\nOpenSSH_8.9p1 Ubuntu-3ubuntu0.10, OpenSSL 3.0.2 15 Mar 2022\nusage: sshd [-46DdeiqTt]", maj: 8, min: 9, portable: "p1",
			raw: "OpenSSH_8.9p1 Ubuntu-3ubuntu0.10, OpenSSL 3.0.2 15 Mar 2022"},
		{in: "SSH-2.0-OpenSSH_10.0p2 Debian-5", maj: 10, min: 0, portable: "p2", raw: "SSH-2.0-OpenSSH_10.0p2 Debian-5"},
		{in: "OpenSSH_for_Windows_9.5p1, LibreSSL 3.8.2", maj: 9, min: 5, portable: "p1", raw: "OpenSSH_for_Windows_9.5p1, LibreSSL 3.8.2"},
		{in: "SSH-2.0-dropbear_2022.83", err: true},
		{in: "", err: true},
	} {
		v, err := ParseVersion(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("ParseVersion(%q) = %+v, want error", tc.in, v)
			}
			continue
		}
		if err != nil || v.Major != tc.maj || v.Minor != tc.min || v.Portable != tc.portable || v.Raw != tc.raw {
			t.Errorf("ParseVersion(%q) = %+v, %v", tc.in, v, err)
		}
	}
}

func TestVersionAtLeast(t *testing.T) {
	v := Version{Major: 9, Minor: 2}
	for _, tc := range []struct {
		maj, min int
		want     bool
	}{{9, 2, true}, {9, 1, true}, {8, 9, true}, {9, 3, false}, {10, 0, false}} {
		if got := v.AtLeast(tc.maj, tc.min); got != tc.want {
			t.Errorf("9.2 AtLeast(%d,%d) = %v", tc.maj, tc.min, got)
		}
	}
	if s := (Version{Major: 9, Minor: 2, Portable: "p1"}).String(); s != "OpenSSH_9.2p1" {
		t.Errorf("String = %q", s)
	}
}

func TestInstalledVersion(t *testing.T) {
	requireSSHD(t)
	requireTool(t, "ssh")
	v, err := InstalledVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !v.AtLeast(7, 0) || v.Portable == "" || v.Raw == "" {
		t.Errorf("InstalledVersion = %+v", v)
	}
	t.Logf("installed: %s (%s)", v, v.Raw)

	kex, err := SupportedKex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kex, "curve25519-sha256") {
		t.Errorf("ssh -Q kex lacks curve25519-sha256: %q", kex)
	}
	if _, err := Query(context.Background(), "-V"); err == nil {
		t.Error("Query accepted an option as kind")
	}
}
