package harden

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/term"
)

// SwapFile is the swapfile moat manages.
const SwapFile = "/swapfile"

const (
	defaultSwap       = 2 << 30 // where RAM ≤ 4 GiB
	smallRAM          = 4 << 30
	defaultSwappiness = 10
)

// swapMagic ends the first page of a swap area (mkswap's signature).
var swapMagic = []byte("SWAPSPACE2")

// FstabWithSwap returns fstab with a line for the swapfile added, or fstab
// unchanged when one is there.
func FstabWithSwap(fstab []byte, file string) []byte {
	for _, l := range strings.Split(string(fstab), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && !strings.HasPrefix(f[0], "#") && f[0] == file && f[2] == "swap" {
			return fstab
		}
	}
	out := bytes.Clone(fstab)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, []byte(file+" none swap sw 0 0  # added by moat\n")...)
}

// planSwap returns the swap step (nil when there is nothing to do) and the
// vm.swappiness to set (nil: leave it).
func planSwap(f *facts, in Input, p *Plan) (*change.Step, *int) {
	cfg := in.Host.Swap
	if cfg.Disabled {
		return nil, cfg.Swappiness
	}
	st := &change.Step{Layer: "swap"}
	size := uint64(cfg.Size)
	if size == 0 {
		switch {
		case f.mem == nil:
			st.Warnings = append(st.Warnings, "cannot read the memory size: set host.swap.size to have moat make swap")
			return st, cfg.Swappiness
		case f.mem.MemTotal > smallRAM:
			st.Summary = append(st.Summary, fmt.Sprintf("%s of RAM: no swapfile by default (set host.swap.size to have one)", human(f.mem.MemTotal)))
			return st, cfg.Swappiness
		}
		size = defaultSwap
	}
	swappiness := cfg.Swappiness
	if swappiness == nil {
		v := defaultSwappiness
		swappiness = &v
	}
	if f.virt.Container {
		st.Warnings = append(st.Warnings, fmt.Sprintf("swap: not applicable in a container (%s): the host's kernel owns swap", f.virt.Kind))
		return st, nil
	}
	for _, s := range f.swaps {
		if s.Filename == SwapFile {
			st.Summary = append(st.Summary, fmt.Sprintf("%s is in use (%s): nothing to do", SwapFile, human(s.Size)))
			return addFstab(f, st), swappiness
		}
	}
	if len(f.swaps) > 0 {
		st.Summary = append(st.Summary, fmt.Sprintf("swap is on already (%s): moat adds none", f.swaps[0].Filename))
		return st, swappiness
	}
	path := change.HostPath(f.root, SwapFile)
	reuse := false
	if fi, err := os.Stat(path); err == nil {
		if !isSwapArea(path) {
			p.Refusals = append(p.Refusals, fmt.Sprintf("%s exists and is not a swap area: move it away, or set host.swap.disabled", SwapFile))
			return nil, nil
		}
		reuse = true
		size = uint64(fi.Size())
		if !f.live {
			// Never swapon from a fixture; all that is left is fstab.
			st.Summary = append(st.Summary, fmt.Sprintf("%s is a swap area (%s); swapon is not run under --root", SwapFile, human(size)))
			return addFstab(f, st), swappiness
		}
		st.Summary = append(st.Summary, fmt.Sprintf("turn on the existing swap area %s (%s)", SwapFile, human(size)))
	} else {
		if free, ok := freeSpace(f.root); ok && free < size+size/10+(1<<30) {
			p.Refusals = append(p.Refusals, fmt.Sprintf("swap: %s free on /, not enough for a %s swapfile and 1 GiB to spare: set host.swap.size lower", human(free), human(size)))
			return nil, nil
		}
		st.Summary = append(st.Summary, fmt.Sprintf("create %s (%s, mode 0600), mkswap, swapon", SwapFile, human(size)))
		st.Touch = append(st.Touch, SwapFile)
	}
	st.Undo = append(st.Undo, change.Action{Kind: ActionSwapoff, Data: mustJSON(swapData{File: SwapFile}), Early: true})
	live := f.live
	st.Apply = func(ctx context.Context, w *change.Writer) error {
		if !reuse {
			if err := makeSwapfile(ctx, path, size); err != nil {
				os.Remove(path)
				return err
			}
		}
		if !live {
			return nil // never swapon from a fixture: it would be the host's swap
		}
		if err := run(ctx, time.Minute, []string{"swapon", path}); err != nil {
			// In a container, or a kernel without swap: not an error of the
			// change. Leave no swapfile behind.
			if !reuse {
				os.Remove(path)
			}
			return nil
		}
		return nil
	}
	return addFstab(f, st), swappiness
}

// addFstab adds the fstab entry on confirm, if the swapfile is a swap
// area by then (swapon may have turned out not applicable).
func addFstab(f *facts, st *change.Step) *change.Step {
	cur, _ := change.ReadCurrent(f.root, "/etc/fstab")
	if bytes.Equal(FstabWithSwap(cur, SwapFile), cur) {
		return st
	}
	st.Touch = append(st.Touch, "/etc/fstab")
	st.Confirm = append(st.Confirm, change.NewAction(ActionSwapFstab, swapData{File: SwapFile}))
	st.Summary = append(st.Summary, "on confirm: add "+SwapFile+" to /etc/fstab")
	return st
}

type swapData struct {
	File string `json:"file"`
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// makeSwapfile allocates the file (fallocate, or dd where the filesystem
// cannot: mkswap refuses files with holes), makes it 0600 and a swap area.
func makeSwapfile(ctx context.Context, path string, size uint64) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	// dd on a filesystem without fallocate writes every byte: minutes.
	p := term.Begin(ctx, "creating swap file "+path)
	defer func() {
		if err != nil {
			p.Done("failed")
			return
		}
		p.Done("done")
	}()
	if err := run(ctx, 5*time.Minute, []string{"fallocate", "--length", strconv.FormatUint(size, 10), path}); err != nil {
		mib := strconv.FormatUint((size+(1<<20)-1)>>20, 10)
		if err := run(ctx, 30*time.Minute, []string{"dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=" + mib, "status=none"}); err != nil {
			return err
		}
	}
	return run(ctx, time.Minute, []string{"mkswap", path})
}

// isSwapArea reports whether path carries mkswap's signature at the end
// of its first page.
func isSwapArea(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(swapMagic))
	pg := int64(os.Getpagesize())
	if _, err := f.ReadAt(buf, pg-int64(len(swapMagic))); err != nil {
		return false
	}
	return bytes.Equal(buf, swapMagic)
}

func freeSpace(root string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(change.HostPath(root, "/"), &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}

func human(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// swapoff turns the swapfile off if it is on (live only).
func swapoff(ctx context.Context, env change.Env, data json.RawMessage) error {
	var d swapData
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	h := host.New(env.Root)
	if !h.Live() {
		return nil
	}
	swaps, _ := h.Swaps()
	for _, s := range swaps {
		if s.Filename == d.File {
			return run(ctx, 10*time.Minute, []string{"swapoff", d.File})
		}
	}
	return nil
}

// swapFstab adds the swapfile to fstab if it is a swap area.
func swapFstab(ctx context.Context, env change.Env, data json.RawMessage) error {
	var d swapData
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	if !isSwapArea(change.HostPath(env.Root, d.File)) {
		return nil // swapon was not applicable; no entry
	}
	cur, err := change.ReadCurrent(env.Root, "/etc/fstab")
	if err != nil {
		return err
	}
	next := FstabWithSwap(cur, d.File)
	if bytes.Equal(next, cur) {
		return nil
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(change.HostPath(env.Root, "/etc/fstab")); err == nil {
		mode = fi.Mode().Perm()
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return change.WriteFile(env.Root, change.File{Path: "/etc/fstab", Data: next, Mode: mode})
}
