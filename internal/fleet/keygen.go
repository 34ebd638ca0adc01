package fleet

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
)

// Keygen writes a new NKEY user seed to path (root-only, refusing to
// overwrite) and returns its public key, for fleet.hosts on every member.
func Keygen(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("fleet keygen: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("fleet keygen: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("fleet keygen: %w", err)
	}
	if err := writeNew(path, append(seed, '\n')); err != nil {
		return "", err
	}
	return pub, nil
}

// PublicKey reads the public key of the NKEY seed file at path.
func PublicKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("fleet: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return "", fmt.Errorf("fleet: %s: %w", path, err)
	}
	return kp.PublicKey()
}

// NewSecret writes a random route secret to path (root-only, refusing
// to overwrite): the same file goes to every member.
func NewSecret(path string) error {
	b := make([]byte, 32)
	rand.Read(b)
	return writeNew(path, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"))
}

// writeNew creates path with data, mode 0600, never replacing a file.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("fleet: %w (remove it first if you mean to replace it)", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("fleet: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fleet: %w", err)
	}
	return f.Close()
}

func validUserKey(k string) bool {
	return strings.HasPrefix(k, "U") && nkeys.IsValidPublicUserKey(k)
}
