package vpn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Keys are where the interface's private key and the peers' preshared
// keys live, under root (a fixture prefix; "" is the live system).
type Keys struct{ Root string }

func (k Keys) dir() string { return filepath.Join(k.Root, StateDir) }

// PrivatePath is the interface's private key file.
func (k Keys) PrivatePath(iface string) string { return filepath.Join(k.dir(), iface+".key") }

// PresharedPath is the preshared key file of the peer with public key
// pub. Files are named by the key, not the peer's name: a rotated peer's
// old key keeps its own, so what was applied (and a rollback to it) still
// finds the right one.
func (k Keys) PresharedPath(pub string) string {
	name := strings.NewReplacer("/", "_", "+", "-", "=", "").Replace(pub)
	return filepath.Join(k.dir(), "peers", name+".psk")
}

// Private reads the interface's private key.
func (k Keys) Private(iface string) (wgtypes.Key, error) {
	return readKey(k.PrivatePath(iface))
}

// Preshared reads the preshared key of the peer with public key pub; ok
// is false when it has none.
func (k Keys) Preshared(pub string) (wgtypes.Key, bool, error) {
	key, err := readKey(k.PresharedPath(pub))
	if errors.Is(err, fs.ErrNotExist) {
		return wgtypes.Key{}, false, nil
	}
	return key, err == nil, err
}

// EnsurePrivate creates the interface's private key unless it exists, and
// returns it: init run twice keeps the host's identity.
func (k Keys) EnsurePrivate(iface string) (wgtypes.Key, bool, error) {
	if key, err := k.Private(iface); err == nil {
		return key, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return key, false, fmt.Errorf("generate a key: %w", err)
	}
	return key, true, writeKey(k.PrivatePath(iface), key)
}

// NewPreshared makes and stores a fresh preshared key for the peer with
// public key pub.
func (k Keys) NewPreshared(pub string) (wgtypes.Key, error) {
	key, err := wgtypes.GenerateKey()
	if err != nil {
		return key, fmt.Errorf("generate a preshared key: %w", err)
	}
	return key, writeKey(k.PresharedPath(pub), key)
}

// RemovePreshared forgets a preshared key.
func (k Keys) RemovePreshared(pub string) error {
	err := os.Remove(k.PresharedPath(pub))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func readKey(p string) (wgtypes.Key, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return wgtypes.Key{}, err
	}
	key, err := wgtypes.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return key, fmt.Errorf("%s: %w", p, err)
	}
	return key, nil
}

// writeKey writes a key file 0600 in a 0700 directory, atomically
// (temp file, fsync, rename): a half-written key would lock peers out.
func writeKey(p string, key wgtypes.Key) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(key.String() + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
