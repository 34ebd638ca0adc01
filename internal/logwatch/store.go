package logwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// MemStore keeps positions in memory; for tests and one-shot runs.
type MemStore struct {
	mu sync.Mutex
	m  map[string]Position
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string]Position{}} }

// Load implements Store.
func (s *MemStore) Load(source string) (Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[source]
	return p, ok, nil
}

// Save implements Store.
func (s *MemStore) Save(source string, p Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[source] = p
	return nil
}

// FileStore keeps positions in a JSON file, rewritten atomically (temp
// file, fsync, rename) on every Save. It suits a CLI or a handful of
// sources; the daemon keeps positions in its database instead.
type FileStore struct {
	path string
	mu   sync.Mutex
	m    map[string]Position
}

type fileStoreDoc struct {
	Generator string              `json:"generator"`
	Positions map[string]Position `json:"positions"`
}

// OpenFileStore loads the positions in path, which need not exist yet.
func OpenFileStore(path string) (*FileStore, error) {
	s := &FileStore{path: path, m: map[string]Position{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	var doc fileStoreDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read positions %s: %w (delete the file to start over)", path, err)
	}
	for k, v := range doc.Positions {
		s.m[k] = v
	}
	return s, nil
}

// Load implements Store.
func (s *FileStore) Load(source string) (Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[source]
	return p, ok, nil
}

// Save implements Store.
func (s *FileStore) Save(source string, p Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[source]
	s.m[source] = p
	if err := s.write(); err != nil {
		if had {
			s.m[source] = old
		} else {
			delete(s.m, source)
		}
		return err
	}
	return nil
}

func (s *FileStore) write() error {
	b, err := json.MarshalIndent(fileStoreDoc{Generator: "moat logwatch", Positions: s.m}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode positions: %w", err)
	}
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".*")
	if err != nil {
		return fmt.Errorf("save positions: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save positions: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename is durable once the directory is
		d.Close()
	}
	return nil
}

// committer records acknowledged positions, at most once per interval,
// plus a final flush.
type committer struct {
	store    Store
	source   string
	interval time.Duration
	last     time.Time
	pending  Position
	dirty    bool
}

func newCommitter(store Store, source string, interval time.Duration) *committer {
	if interval <= 0 {
		interval = DefaultSaveInterval
	}
	return &committer{store: store, source: source, interval: interval}
}

// ack records that everything up to p was handled.
func (c *committer) ack(p Position) error {
	if c.store == nil {
		return nil
	}
	c.pending, c.dirty = p, true
	if now := time.Now(); now.Sub(c.last) >= c.interval {
		c.last = now
		return c.flush()
	}
	return nil
}

func (c *committer) flush() error {
	if c.store == nil || !c.dirty {
		return nil
	}
	if err := c.store.Save(c.source, c.pending); err != nil {
		return fmt.Errorf("save position of %s: %w", c.source, err)
	}
	c.dirty = false
	return nil
}
