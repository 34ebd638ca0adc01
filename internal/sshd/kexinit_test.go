package sshd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// marshalKexInit builds a KEXINIT payload (zero cookie).
func marshalKexInit(k KexInit) []byte {
	b := []byte{msgKexInit}
	b = append(b, make([]byte, 16)...)
	for _, l := range [][]string{k.Kex, k.HostKey, k.CiphersCS, k.CiphersSC, k.MACsCS, k.MACsSC,
		k.CompressionCS, k.CompressionSC, k.LanguagesCS, k.LanguagesSC} {
		s := strings.Join(l, ",")
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	first := byte(0)
	if k.FirstKexFollows {
		first = 1
	}
	return append(b, first, 0, 0, 0, 0)
}

// framePacket wraps a payload in an unencrypted binary packet.
func framePacket(payload []byte) []byte {
	pad := 8 - (5+len(payload))%8
	if pad < 4 {
		pad += 8
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+pad))
	b = append(b, byte(pad))
	b = append(b, payload...)
	return append(b, make([]byte, pad)...)
}

func TestParseKexInitCapture(t *testing.T) {
	payload, err := os.ReadFile("testdata/kexinit-openssh-9.2p1.bin")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKexInit(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !k.StrictKex() || !slices.Contains(k.Kex, "sntrup761x25519-sha512@openssh.com") || k.Kex[0] != "sntrup761x25519-sha512" {
		t.Errorf("kex = %q", k.Kex)
	}
	if !reflect.DeepEqual(k.HostKey, []string{"ssh-ed25519"}) {
		t.Errorf("hostkey = %q", k.HostKey)
	}
	if k.CiphersCS[0] != "chacha20-poly1305@openssh.com" || !reflect.DeepEqual(k.CiphersCS, k.CiphersSC) {
		t.Errorf("ciphers = %q / %q", k.CiphersCS, k.CiphersSC)
	}
	if !slices.Contains(k.MACsSC, "hmac-sha2-256-etm@openssh.com") || !reflect.DeepEqual(k.CompressionCS, []string{"none", "zlib@openssh.com"}) {
		t.Errorf("macs %q compression %q", k.MACsSC, k.CompressionCS)
	}
	if k.LanguagesCS != nil || k.LanguagesSC != nil || k.FirstKexFollows {
		t.Errorf("languages %q %q first %v", k.LanguagesCS, k.LanguagesSC, k.FirstKexFollows)
	}
	if TerrapinExposed(k) {
		t.Error("strict-kex server reported Terrapin-exposed")
	}
	if back := marshalKexInit(k); !bytes.Equal(back[17:], payload[17:]) {
		t.Error("re-marshalled payload differs")
	}
}

func TestParseKexInitErrors(t *testing.T) {
	good := marshalKexInit(KexInit{Kex: []string{"curve25519-sha256"}, HostKey: []string{"ssh-ed25519"}})
	badLen := slices.Clone(good)
	binary.BigEndian.PutUint32(badLen[17:], 0xffffffff)
	for name, p := range map[string][]byte{
		"empty":         nil,
		"wrong message": append([]byte{21}, good[1:]...),
		"short cookie":  good[:10],
		"truncated":     good[:len(good)-3],
		"huge length":   badLen,
		"empty name":    marshalKexInit(KexInit{Kex: []string{"a", "", "b"}}),
		"control byte":  marshalKexInit(KexInit{Kex: []string{"a\x1b[31m"}}),
		"space":         marshalKexInit(KexInit{Kex: []string{"a b"}}),
	} {
		if _, err := ParseKexInit(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseKexInit(good); err != nil {
		t.Errorf("good: %v", err)
	}
}

func TestReadGreeting(t *testing.T) {
	k := KexInit{Kex: []string{"curve25519-sha256", StrictKexServer}, HostKey: []string{"ssh-ed25519"}, FirstKexFollows: true}
	var wire bytes.Buffer
	wire.WriteString("Welcome, this is not the version\r\nSSH-2.0-OpenSSH_9.9 Fancy\r\n")
	wire.Write(framePacket([]byte{msgIgnore, 0, 0, 0, 0}))
	wire.Write(framePacket(marshalKexInit(k)))
	br := bufio.NewReader(&wire)
	v, err := readVersion(br)
	if err != nil || v != "SSH-2.0-OpenSSH_9.9 Fancy" {
		t.Fatalf("readVersion = %q, %v", v, err)
	}
	p, err := readKexInitPacket(br)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseKexInit(p)
	if err != nil || !reflect.DeepEqual(got, k) {
		t.Fatalf("got %+v, %v", got, err)
	}

	for name, in := range map[string]string{
		"ssh1":       "SSH-1.5-old\r\n",
		"eof":        "hello\r\n",
		"long line":  strings.Repeat("x", maxBannerLine+1) + "\n",
		"control":    "SSH-2.0-a\x1bb\r\n",
		"many lines": strings.Repeat("x\n", maxPreBanner+1),
	} {
		if _, err := readVersion(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("readVersion %s: no error", name)
		}
	}
	for name, in := range map[string][]byte{
		"too long":    {0, 1, 0, 0, 4},
		"pad > len":   {0, 0, 0, 5, 9, 1, 2, 3, 4},
		"service msg": framePacket([]byte{5, 0, 0, 0, 0}),
		"truncated":   framePacket(marshalKexInit(k))[:40],
		"all ignore":  bytes.Repeat(framePacket([]byte{msgIgnore}), maxSkipPackets+1),
	} {
		if _, err := readKexInitPacket(bytes.NewReader(in)); err == nil {
			t.Errorf("readKexInitPacket %s: no error", name)
		}
	}
}

func FuzzParseKexInit(f *testing.F) {
	if b, err := os.ReadFile("testdata/kexinit-openssh-9.2p1.bin"); err == nil {
		f.Add(b)
	}
	f.Add(marshalKexInit(KexInit{Kex: []string{"a"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKexInit(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same name-lists.
		back := marshalKexInit(k)
		k2, err := ParseKexInit(back)
		if err != nil || !reflect.DeepEqual(k, k2) {
			t.Fatalf("round trip: %+v vs %+v (%v)", k, k2, err)
		}
		for _, l := range [][]string{k.Kex, k.HostKey, k.CiphersCS, k.MACsSC, k.CompressionCS, k.LanguagesSC} {
			for _, n := range l {
				if n == "" || strings.ContainsAny(n, ", \x00\x1b") {
					t.Fatalf("bad name %q", n)
				}
			}
		}
	})
}
