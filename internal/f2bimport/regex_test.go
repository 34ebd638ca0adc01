package f2bimport

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/lab"
)

// sampleLogs are the annotated logs Debian's fail2ban package ships with
// its test suite.
const sampleLogs = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"

// differentialFail2banRegex (run by TestImportEveryShippedJail, on its
// import) runs every filter the import translates
// over fail2ban's own sample log for it, once with fail2ban-regex and once
// with moat's filter code: moat must find no address fail2ban does not
// (a translation must never widen what bans), and the share of
// fail2ban's addresses it finds is reported.
func differentialFail2banRegex(t *testing.T, dir string, r *Result, c *config.Config) {
	lab.RequireTool(t, "fail2ban-regex")
	_, err := os.Stat(sampleLogs)
	lab.Require(t, err == nil, "needs fail2ban's sample logs under "+sampleLogs+" (Debian's fail2ban package)")
	names := make([]string, 0, len(r.Filters))
	for n := range r.Filters {
		names = append(names, n)
	}
	sort.Strings(names)
	total, found, compared := 0, 0, 0
	now := func() time.Time { return time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC) }
	for _, name := range names {
		src := r.Filters[name]
		log := filepath.Join(sampleLogs, src.Name)
		if _, err := os.Stat(log); err != nil {
			continue
		}
		spec := filepath.Join(dir, "filter.d", src.Name+".conf")
		if len(src.Opts) > 0 {
			var o []string
			for k, v := range src.Opts {
				o = append(o, k+"="+v)
			}
			sort.Strings(o)
			spec += "[" + strings.Join(o, ", ") + "]"
		}
		theirs := fail2banRegex(t, log, spec)
		flt, err := c.Filter(name, "", filter.Options{Now: now})
		if err != nil {
			t.Fatalf("filter %s: %v", name, err)
		}
		ours := map[string]bool{}
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		// A last line without its newline is one being written: fail2ban
		// (and moat's file reader) wait for the rest.
		lines = lines[:len(lines)-1]
		for _, line := range lines {
			if strings.HasPrefix(line, "#") || line == "" {
				continue
			}
			var res filter.Result
			res.Reset()
			flt.Process(filter.Entry{Text: []byte(line)}, &res)
			for _, f := range res.Failures {
				if f.Addr.IsValid() {
					ours[f.Addr.String()] = true
				}
			}
		}
		n := 0
		for a := range ours {
			if !theirs[a] {
				t.Errorf("filter %s: moat finds %s in %s, fail2ban does not: the translation widened the filter", name, a, log)
				continue
			}
			n++
		}
		compared++
		total += len(theirs)
		found += n
		t.Logf("%-22s fail2ban %3d addresses, moat %3d of them", name, len(theirs), n)
	}
	t.Logf("%d filters compared: moat finds %d of fail2ban's %d addresses", compared, found, total)
	if compared < 10 || found*2 < total {
		t.Errorf("%d filters compared, %d of %d addresses found: the translation lost too much", compared, found, total)
	}
}

// fail2banRegex returns the addresses fail2ban-regex finds in log.
func fail2banRegex(t *testing.T, log, spec string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "fail2ban-regex", "-o", "ip", log, spec)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fail2ban-regex %s %s: %v\n%s", log, spec, err, stderr.String())
	}
	m := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if a := strings.TrimSpace(sc.Text()); a != "" && a != "None" {
			m[a] = true
		}
	}
	return m
}
