package checkpoint

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// FileStore appends records as JSON lines to a file; the last record of a key
// wins. Appends are safe against the process being killed (the kernel has the
// bytes); durable records are also fsynced, against the machine going down.
type FileStore struct {
	path string

	mu sync.Mutex
	f  *os.File
}

// DefaultDir is where runs keep their state: $XDG_STATE_HOME/replicator, or
// ~/.local/state/replicator.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "replicator"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find a state directory: %w (pass --state-dir)", err)
	}
	return filepath.Join(home, ".local", "state", "replicator"), nil
}

// NewFileStore keeps the records of run id in dir.
func NewFileStore(dir, id string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &FileStore{path: filepath.Join(dir, id+".jsonl")}, nil
}

// Path of the state file.
func (s *FileStore) Path() string { return s.path }

func (s *FileStore) Load(ctx context.Context) (map[string]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Record{}
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line cut short by a kill
		}
		out[r.Key] = r
	}
	return out, sc.Err()
}

func (s *FileStore) Put(ctx context.Context, r Record, durable bool) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
		s.f = f
		// After a torn last line, start on a fresh one.
		if st, err := f.Stat(); err == nil && st.Size() > 0 {
			last := make([]byte, 1)
			if r, err := os.Open(s.path); err == nil {
				r.ReadAt(last, st.Size()-1)
				r.Close()
			}
			if last[0] != '\n' {
				f.Write([]byte{'\n'})
			}
		}
	}
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if durable {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("sync checkpoint: %w", err)
		}
	}
	return nil
}

func (s *FileStore) Clear(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Close releases the file.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
