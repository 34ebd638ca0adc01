package blocklist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Validators are what a source said identifies its copy, sent back on the
// next fetch so an unchanged list costs a 304 and no body.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Fetched is one answer of a Feed.
type Fetched struct {
	// NotModified: the copy named by the validators sent is current;
	// Data is empty.
	NotModified bool
	Data        []byte
	Validators  Validators
}

// A Feed supplies a list's raw bytes: an https URL (HTTPFeed), a file
// (FileFeed), or anything else that can hand over bytes (a fleet's
// shared store). prev are the validators of the copy loaded now (zero
// when none).
type Feed interface {
	Fetch(ctx context.Context, prev Validators) (Fetched, error)
}

// ErrTooLarge is a list over its size bound.
var ErrTooLarge = errors.New("list larger than its bound")

// HTTPFeed fetches a list over https with a conditional GET.
type HTTPFeed struct {
	URL      string
	Client   *http.Client // nil: a client that refuses redirects off https
	MaxBytes int64
	Timeout  time.Duration
	// UserAgent names moat to the list's publisher.
	UserAgent string
}

// Fetch sends If-None-Match and If-Modified-Since from prev; a 304 keeps
// the copy loaded. A body over MaxBytes (after decompression) is refused.
func (f *HTTPFeed) Fetch(ctx context.Context, prev Validators) (Fetched, error) {
	if f.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return Fetched{}, err
	}
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	ua := f.UserAgent
	if ua == "" {
		ua = "moat-blocklist"
	}
	req.Header.Set("User-Agent", ua)
	c := f.Client
	if c == nil {
		c = defaultClient
	} else if c.CheckRedirect == nil {
		cc := *c
		cc.CheckRedirect = httpsOnly
		c = &cc
	}
	resp, err := c.Do(req)
	if err != nil {
		return Fetched{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return Fetched{NotModified: true, Validators: prev}, nil
	case http.StatusOK:
	default:
		return Fetched{}, fmt.Errorf("HTTP %s", resp.Status)
	}
	max := f.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	if resp.ContentLength > max {
		return Fetched{}, fmt.Errorf("%w: %d bytes announced, bound %d (raise max_bytes if the list really grew)", ErrTooLarge, resp.ContentLength, max)
	}
	data, err := readBounded(resp.Body, max)
	if err != nil {
		return Fetched{}, err
	}
	// A body cut off by the time bound can end cleanly (the publisher's
	// server, seeing the connection go, finishes its chunked answer): a
	// copy read past the deadline is not trusted to be whole.
	if err := ctx.Err(); err != nil {
		return Fetched{}, fmt.Errorf("read the list: %w (timeout %s)", err, f.Timeout)
	}
	return Fetched{Data: data, Validators: Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}}, nil
}

// defaultClient follows at most 5 redirects, and only to https.
var defaultClient = &http.Client{CheckRedirect: httpsOnly}

func httpsOnly(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("more than 5 redirects")
	}
	if req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %s refused: lists are fetched over https only", req.URL.Redacted())
	}
	return nil
}

func readBounded(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read the list: %w", err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes (raise max_bytes if the list really grew)", ErrTooLarge, max)
	}
	return data, nil
}

// FileFeed reads a list from a local file; the file's modification time
// and size stand in for the validators.
type FileFeed struct {
	Path     string
	MaxBytes int64
}

// Fetch reads the file unless its time and size are those of prev.
func (f *FileFeed) Fetch(ctx context.Context, prev Validators) (Fetched, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return Fetched{}, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return Fetched{}, err
	}
	if !st.Mode().IsRegular() {
		return Fetched{}, fmt.Errorf("%s is not a regular file", f.Path)
	}
	v := Validators{LastModified: st.ModTime().UTC().Format(time.RFC3339Nano), ETag: strconv.FormatInt(st.Size(), 10)}
	if v == prev {
		return Fetched{NotModified: true, Validators: v}, nil
	}
	max := f.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	data, err := readBounded(fh, max)
	if err != nil {
		return Fetched{}, err
	}
	return Fetched{Data: data, Validators: v}, nil
}
