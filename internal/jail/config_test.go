package jail

import (
	"strings"
	"testing"
)

// A jail's journal matches must rest on fields journald sets: a match on
// SYSLOG_IDENTIFIER lets any local user feed the jail (logger -t NAME).
func TestValidateJournalMatchesTrustedFieldsOnly(t *testing.T) {
	for _, tc := range []struct {
		matches []string
		err     string
	}{
		{[]string{"_SYSTEMD_UNIT=nginx.service"}, ""},
		{[]string{"_COMM=app", "_UID=0", "+", "_SYSTEMD_UNIT=app.service"}, ""},
		{[]string{"SYSLOG_IDENTIFIER=app"}, "set by whoever logs the entry"},
		{[]string{"_SYSTEMD_UNIT=app.service", "+", "SYSLOG_IDENTIFIER=app"}, "set by whoever logs the entry"},
		{[]string{"_comm=app"}, "expected a journal match"},
		{[]string{"app"}, "expected a journal match"},
	} {
		c := Config{MaxTracked: 100000, Jails: map[string]Jail{"app": {Filter: "app", Source: "journal", Journal: tc.matches}}}
		err := c.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.matches, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.matches, err, tc.err)
		}
	}
}
