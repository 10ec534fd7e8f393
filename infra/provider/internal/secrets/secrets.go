// Package secrets stores OpenFaaS secrets as files under <state-dir>/secrets
// and copies the ones a deployment lists into each replica's own secrets
// directory, the way Kubernetes mounts them at /var/openfaas/secrets.
package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"

	"adserver/provider/internal/fsutil"
)

// MaxNameLen follows Kubernetes' limit for secret names (a DNS subdomain).
const MaxNameLen = 253

// MaxValueLen bounds one secret; Kubernetes allows 1 MiB.
const MaxValueLen = 1 << 20

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

var (
	// ErrExists is returned by Create when the secret exists already.
	ErrExists = errors.New("secret already exists")
	// ErrNotFound is returned when the secret does not exist.
	ErrNotFound = errors.New("secret not found")
)

// ValidateName accepts Kubernetes-style names: [a-z0-9._-], starting and
// ending with a letter or digit. This also keeps names safe as file names.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("secret name is required")
	}
	if len(name) > MaxNameLen || !nameRE.MatchString(name) {
		return fmt.Errorf("invalid secret name %q: use at most %d characters of [a-z0-9.-_], starting and ending with a letter or digit", name, MaxNameLen)
	}
	return nil
}

// Store keeps secrets in one directory, one file per secret (mode 0600).
type Store struct {
	mu  sync.Mutex
	dir string
}

// NewStore creates dir (0700) if needed.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) exists(name string) bool {
	_, err := os.Lstat(s.path(name))
	return err == nil
}

// Create adds a new secret; ErrExists if it is there already.
func (s *Store) Create(name string, value []byte) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exists(name) {
		return ErrExists
	}
	return fsutil.WriteFileAtomic(s.path(name), value, 0o600)
}

// Update replaces an existing secret; ErrNotFound if it is missing.
// Running replicas keep the copy they started with, as with env secrets.
func (s *Store) Update(name string, value []byte) error {
	return s.existing(name, func(path string) error {
		return fsutil.WriteFileAtomic(path, value, 0o600)
	})
}

// Delete removes a secret; ErrNotFound if it is missing.
func (s *Store) Delete(name string) error {
	return s.existing(name, os.Remove)
}

// existing runs change on the file of an existing secret, under the lock;
// ErrNotFound if there is no such secret.
func (s *Store) existing(name string, change func(path string) error) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exists(name) {
		return ErrNotFound
	}
	return change(s.path(name))
}

// List returns the secret names, sorted.
func (s *Store) List() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range entries {
		if e.Type().IsRegular() && ValidateName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Missing returns those of names that do not exist.
func (s *Store) Missing(names []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []string
	for _, n := range names {
		if ValidateName(n) != nil || !s.exists(n) {
			missing = append(missing, n)
		}
	}
	return missing
}

// CopyTo copies the named secrets into dir with mode 0400. Secrets deleted
// since the deployment was accepted are skipped and returned, so that the
// caller can log them; the function then sees them missing, as it would
// see an unmounted Kubernetes secret.
func (s *Store) CopyTo(names []string, dir string) (missing []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		data, err := os.ReadFile(s.path(n))
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, n)
			continue
		}
		if err != nil {
			return missing, err
		}
		dst := filepath.Join(dir, n)
		_ = os.Remove(dst) // an old 0400 copy cannot be opened for writing
		if err := os.WriteFile(dst, data, 0o400); err != nil {
			return missing, err
		}
	}
	return missing, nil
}
