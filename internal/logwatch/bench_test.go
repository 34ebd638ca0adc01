package logwatch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

const benchLines = 1_000_000

var (
	benchOnce sync.Once
	benchPath string
	benchErr  error
)

// benchFile writes, once per test binary, a log of benchLines sshd lines
// in OpenSSH 9 formats (failures, successes, noise; IPv4 and IPv6).
func benchFile(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moat-logwatch-bench-")
		if err != nil {
			benchErr = err
			return
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		benchPath = filepath.Join(dir, "auth.log")
		f, err := os.Create(benchPath)
		if err != nil {
			benchErr = err
			return
		}
		w := bufio.NewWriterSize(f, 1<<20)
		for i := range benchLines {
			ts := fmt.Sprintf("2025-01-%02dT%02d:%02d:%02d.%06d+00:00 vps", 1+i/86400%28, i/3600%24, i/60%60, i%60, i%1000000)
			pid := 10000 + i%50000
			switch i % 5 {
			case 0:
				fmt.Fprintf(w, "%s sshd-session[%d]: Failed password for invalid user admin%d from 203.0.%d.%d port %d ssh2\n", ts, pid, i%100, i/256%256, i%256, 30000+i%30000)
			case 1:
				fmt.Fprintf(w, "%s sshd-session[%d]: Connection closed by authenticating user root 2001:db8::%x port %d [preauth]\n", ts, pid, i%65536, 30000+i%30000)
			case 2:
				fmt.Fprintf(w, "%s sshd-session[%d]: Invalid user test%d from 198.51.100.%d port %d\n", ts, pid, i%1000, i%256, 30000+i%30000)
			case 3:
				fmt.Fprintf(w, "%s sshd-session[%d]: Accepted publickey for deploy from 192.0.2.%d port %d ssh2: ED25519 SHA256:abcdefghijklmnop\n", ts, pid, i%256, 30000+i%30000)
			default:
				fmt.Fprintf(w, "%s CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)\n", ts, pid)
			}
		}
		if err := w.Flush(); err != nil {
			benchErr = err
		}
		if err := f.Close(); err != nil && benchErr == nil {
			benchErr = err
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPath
}

// BenchmarkFileSource reads a 1,000,000-line sshd log from disk through
// a File source (page cache warm) and reports lines per second.
func BenchmarkFileSource(b *testing.B) {
	path := benchFile(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		src, err := NewFile(FileConfig{Path: path, Start: StartAtBeginning})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err = src.Run(ctx, func(batch []Line) error {
			for i := range batch {
				n += len(batch[i].Text) & 1 // touch every line
			}
			if batch[len(batch)-1].Pos.Offset == fi.Size() {
				cancel()
			}
			return nil
		})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if got := src.Stats().Lines; got != benchLines {
			b.Fatalf("read %d lines, want %d", got, benchLines)
		}
	}
	b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkJournalRead parses journalctl output (typical sshd entries
// with the default fields) and reports entries per second.
func BenchmarkJournalRead(b *testing.B) {
	var buf bytes.Buffer
	const n = 10_000
	for i := range n {
		fmt.Fprintf(&buf, `{"__CURSOR":"s=881edea36f354a13b03765db4628839e;i=%x;b=eae5ec19ffe7479b8ea27b9f8438f7a7;m=68e3a452;t=660c309a8fa72;x=4cc89dd7bea536c9","__REALTIME_TIMESTAMP":"1795240657222258","__MONOTONIC_TIMESTAMP":"1759749202","_BOOT_ID":"eae5ec19ffe7479b8ea27b9f8438f7a7","MESSAGE":"Failed password for invalid user admin from 203.0.113.%d port 52311 ssh2","_PID":"%d","SYSLOG_IDENTIFIER":"sshd-session","_SYSTEMD_UNIT":"ssh.service","_COMM":"sshd-session","_HOSTNAME":"vps","PRIORITY":"6","SYSLOG_PID":"%d"}`+"\n", i, i%256, 1000+i, 1000+i)
	}
	j, err := NewJournal(JournalConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		var cursor string
		got, err := j.read(bytes.NewReader(buf.Bytes()), &cursor, newCommitter(nil, "", 0), func([]Line) error { return nil })
		if err != nil || got != n {
			b.Fatal(got, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
