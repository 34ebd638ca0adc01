package logwatch

import (
	"bufio"
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
