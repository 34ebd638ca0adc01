package jail

import (
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

// TestPermanentBanTime: bantime: permanent (fail2ban's bantime = -1) gives
// bans that never end, also for repeat offenders, and never overflows a
// time into a ban that ends in the past.
func TestPermanentBanTime(t *testing.T) {
	j := JailDefaults("sshd", Jail{BanTime: schema.Permanent})
	if err := (Config{MaxTracked: 1000, Jails: map[string]Jail{"sshd": {BanTime: schema.Permanent}}}).Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for prev := range 5 {
		d := Decision{At: at, BanTime: j.BanTimeFor(prev)}
		if !d.Until().IsZero() {
			t.Errorf("previous %d: until %v, want never (zero)", prev, d.Until())
		}
	}
	if d := (Decision{At: at, BanTime: time.Hour}); !d.Until().Equal(at.Add(time.Hour)) {
		t.Errorf("1h ban until %v", d.Until())
	}
}
