package vpn

import (
	"errors"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// InterfaceStatus is the VPN block of `moat status`: the managed
// interface and its peers.
type InterfaceStatus struct {
	Interface string `json:"interface"`
	Up        bool   `json:"up"`
	Error     string `json:"error,omitempty"`
	Port      int    `json:"listen_port,omitempty"`
	// Impl is what runs the interface while it is up: kernel or
	// wireguard-go (userspace).
	Impl  Implementation `json:"implementation,omitempty"`
	Peers []PeerStatus   `json:"peers"`
}

// ReadStatus reads the managed interface; nil without one. It needs no
// daemon, so `moat status` shows it with the daemon down too.
func ReadStatus(w *WireGuard) *InterfaceStatus {
	if w == nil {
		return nil
	}
	st := &InterfaceStatus{Interface: w.Name(), Port: w.Port()}
	dev, err := Show(w.Name())
	if err != nil && !errors.Is(err, ErrNoDevice) {
		st.Error = err.Error()
	}
	st.Up = dev != nil
	if dev != nil {
		st.Impl = Kernel
		if dev.Type == wgtypes.Userspace {
			st.Impl = Userspace
		}
	}
	st.Peers = w.Status(dev)
	if st.Peers == nil {
		st.Peers = []PeerStatus{}
	}
	return st
}
