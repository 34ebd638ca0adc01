package firewall

import (
	"os"
	"testing"
)

// nft JSON is what readLive and ReadStatus parse; a seed from the kernel
// and a few broken shapes.
func nftSeeds(f *testing.F) {
	if b, err := os.ReadFile("../audit/testdata/nft/moat-table.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"nftables":[{"set":{"name":"ban4","type":"ipv4_addr","flags":["timeout","interval"]}},{"set":{"name":"ban6","type":{"typeof":1},"flags":"x"}}]}`))
	f.Add([]byte(`{"nftables":[{"rule":{"chain":"input","comment":"public","expr":[{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[80,{"range":[1,2]},[3]]}}},{"accept":null}]}}]}`))
	f.Add([]byte(`{"nftables":[{"quota":{"name":"q"}},{"counter":{"name":"drop_ban","packets":-1}}]}`))
	f.Add([]byte(`{"nftables":null}`))
}

func FuzzParseLive(f *testing.F) {
	nftSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lt, err := parseLive(data)
		if err != nil {
			return
		}
		// Whatever was read, the script must name only what was listed.
		_ = ApplyScript("table inet moat {\n}\n", lt)
	})
}

func FuzzStatusParse(f *testing.F) {
	nftSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var st Status
		if st.parse(data) != nil {
			return
		}
		st.WriteText(discard{})
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
