package vpn

import "errors"

// InterfaceStatus is the VPN block of `moat status`: the managed
// interface and its peers.
type InterfaceStatus struct {
	Interface string       `json:"interface"`
	Up        bool         `json:"up"`
	Error     string       `json:"error,omitempty"`
	Port      int          `json:"listen_port,omitempty"`
	Peers     []PeerStatus `json:"peers"`
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
	st.Peers = w.Status(dev)
	if st.Peers == nil {
		st.Peers = []PeerStatus{}
	}
	return st
}
