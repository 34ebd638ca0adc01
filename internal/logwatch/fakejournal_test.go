package logwatch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fakeJournalctlEnv, when set to a directory, makes the test binary act
// as journalctl over that directory:
//
//	journal.jsonl  entries, one JSON object a line, each with __CURSOR
//	               and __REALTIME_TIMESTAMP, appended to by the test
//	args           every invocation's arguments, one JSON array a line
//	pid            the pid of the latest invocation
//	crash          if present: exit 1 after printing that many entries
//	               (the file is removed first, so the restart goes on)
//
// It honours --after-cursor (an unknown cursor fails, as journalctl does
// for a cursor it cannot seek to), --since=@SECONDS and FIELD=VALUE
// matches as journalctl combines them (terms of one field ORed, of
// different fields ANDed, "+" ORing such groups), and follows the file like --follow.
const fakeJournalctlEnv = "MOAT_LOGWATCH_FAKE_JOURNALCTL"

func fakeJournalctl(args []string) int {
	dir := os.Getenv(fakeJournalctlEnv)
	if b, err := json.Marshal(args); err == nil {
		if f, err := os.OpenFile(filepath.Join(dir, "args"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			f.Write(append(b, '\n'))
			f.Close()
		}
	}
	os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	var after string
	var since int64 = -1
	var matches [][2]string
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--after-cursor="):
			after = strings.TrimPrefix(a, "--after-cursor=")
		case strings.HasPrefix(a, "--since=@"):
			sec, err := strconv.ParseFloat(strings.TrimPrefix(a, "--since=@"), 64)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bad --since")
				return 1
			}
			since = int64(sec * 1e6)
		case a == "--":
			for _, m := range args[i+1:] {
				if m == "+" {
					matches = append(matches, [2]string{"+", ""})
				} else if k, v, ok := strings.Cut(m, "="); ok {
					matches = append(matches, [2]string{k, v})
				}
			}
		}
	}
	crashAfter := -1
	if b, err := os.ReadFile(filepath.Join(dir, "crash")); err == nil {
		crashAfter, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		os.Remove(filepath.Join(dir, "crash"))
	}
	out := bufio.NewWriter(os.Stdout)
	seen, printed := 0, 0
	found := after == ""
	for idle := 0; idle < 12_000; idle++ { // at most a minute without input
		b, _ := os.ReadFile(filepath.Join(dir, "journal.jsonl"))
		lines := strings.Split(string(b), "\n")
		lines = lines[:len(lines)-1] // empty, or not complete yet
		for _, l := range lines[min(seen, len(lines)):] {
			seen++
			if l == "" {
				continue
			}
			var e map[string]any
			if json.Unmarshal([]byte(l), &e) != nil {
				out.WriteString(l + "\n") // let the reader cope
				continue
			}
			if !found {
				found = e["__CURSOR"] == after
				continue
			}
			if us, _ := strconv.ParseInt(fmt.Sprint(e["__REALTIME_TIMESTAMP"]), 10, 64); us < since {
				continue
			}
			if !matchAny(e, matches) {
				continue
			}
			out.WriteString(l + "\n")
			printed++
			if printed == crashAfter {
				out.Flush()
				fmt.Fprintln(os.Stderr, "fake journalctl: crashing as asked")
				return 1
			}
			idle = 0
		}
		if !found {
			fmt.Fprintf(os.Stderr, "Failed to seek to cursor %s: Invalid argument\n", after)
			return 1
		}
		out.Flush()
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

func matchAny(e map[string]any, matches [][2]string) bool {
	if len(matches) == 0 {
		return true
	}
	// Each "+"-separated group: every field named must hold one of the
	// values given for it.
	group := map[string][]string{}
	check := func() bool {
		if len(group) == 0 {
			return false
		}
		for k, vs := range group {
			v, _ := e[k].(string)
			if !slices.Contains(vs, v) {
				return false
			}
		}
		return true
	}
	for _, m := range matches {
		if m[0] == "+" {
			if check() {
				return true
			}
			group = map[string][]string{}
			continue
		}
		group[m[0]] = append(group[m[0]], m[1])
	}
	return check()
}
