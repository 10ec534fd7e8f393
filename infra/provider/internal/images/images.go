// Package images finds the locally built "images" that replicas run.
//
// The orchestrator turns each `faas-cli build --shrinkwrap` context into a
// directory under --images-dir, named after the image reference in stack.yml,
// holding an image.json manifest that says where the code lives, what to run
// and with which environment. The directory may be a symlink to an immutable
// digest directory; we resolve it at deploy time so that a later rebuild is
// only picked up by a redeploy, as with a real registry tag.
//
// An image taken from the local Docker daemon (package dockerimage) is an
// image directory too: its manifest carries a Container section, the root
// filesystem and process settings a container runtime reads from the image.
package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ManifestFile is the name of the manifest inside an image directory.
const ManifestFile = "image.json"

// maxRefLen bounds image references; Docker's own limit is 255 for the name.
const maxRefLen = 255

// Manifest is the content of image.json.
type Manifest struct {
	Ref      string            `json:"ref"`
	Workdir  string            `json:"workdir"` // inside Container.Rootfs when Container is set
	Fprocess string            `json:"fprocess"`
	Env      map[string]string `json:"env"`
	// Container is set for a container image: the replica runs Argv chrooted
	// into Rootfs as UID/GID, and Fprocess may be empty (the image's own
	// watchdog reads fprocess from Env).
	Container *Container `json:"container,omitempty"`
}

// Container is what a container runtime takes from an image's config.
type Container struct {
	ID     string   `json:"id"`     // the image id (sha256:...)
	Rootfs string   `json:"rootfs"` // the unpacked root filesystem, shared read-only by replicas
	Argv   []string `json:"argv"`   // Entrypoint followed by Cmd
	UID    int      `json:"uid"`
	GID    int      `json:"gid"`
	Groups []int    `json:"groups"` // supplementary groups of the image's user
	Home   string   `json:"home"`   // the user's home directory, HOME when the image sets none
}

// ErrNotBuilt is returned (wrapped) when an image directory or its manifest is missing.
var ErrNotBuilt = errors.New("image has not been built")

// NotBuiltError carries the reference so that the API can say which image is missing.
type NotBuiltError struct {
	Ref    string
	Reason string
}

func (e *NotBuiltError) Error() string {
	return fmt.Sprintf("image %s has not been built: run make up / the image build (%s)", e.Ref, e.Reason)
}

func (e *NotBuiltError) Unwrap() error { return ErrNotBuilt }

// SanitizeRef maps an image reference to its directory name: every character
// outside [A-Za-z0-9_.-] becomes "_" (ads/noop:0.1.0 -> ads_noop_0.1.0).
func SanitizeRef(ref string) string {
	var b strings.Builder
	b.Grow(len(ref))
	for _, c := range ref {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ValidateRef rejects references that cannot name an image directory safely.
func ValidateRef(ref string) error {
	if strings.TrimSpace(ref) == "" {
		return errors.New("image is required")
	}
	if len(ref) > maxRefLen {
		return fmt.Errorf("image reference is longer than %d characters", maxRefLen)
	}
	s := SanitizeRef(ref)
	if strings.HasPrefix(s, ".") {
		return fmt.Errorf("image reference %q is not valid", ref)
	}
	return nil
}

// hasTag reports whether the last path component of ref carries a :tag or @digest.
func hasTag(ref string) bool {
	if strings.Contains(ref, "@") {
		return true
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.Contains(last, ":")
}

// Resolve finds the directory for ref under imagesDir, follows symlinks and
// loads its manifest. An untagged reference also matches its ":latest" build,
// as faas-cli appends ":latest" itself.
func Resolve(imagesDir, ref string) (string, *Manifest, error) {
	if err := ValidateRef(ref); err != nil {
		return "", nil, err
	}
	candidates := []string{ref}
	if !hasTag(ref) {
		candidates = append(candidates, ref+":latest")
	}
	var firstErr error
	for _, c := range candidates {
		dir := filepath.Join(imagesDir, SanitizeRef(c))
		resolved, err := filepath.EvalSymlinks(dir)
		if err != nil {
			if firstErr == nil {
				firstErr = &NotBuiltError{Ref: ref, Reason: "no directory " + dir}
			}
			continue
		}
		m, err := Load(resolved)
		if err != nil {
			return "", nil, &NotBuiltError{Ref: ref, Reason: err.Error()}
		}
		return resolved, m, nil
	}
	return "", nil, firstErr
}

// Load reads and checks image.json in dir.
func Load(dir string) (*Manifest, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("image directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Env == nil {
		m.Env = map[string]string{}
	}
	if m.Container != nil {
		return &m, checkContainer(filepath.Join(dir, ManifestFile), &m)
	}
	if !filepath.IsAbs(m.Workdir) {
		return nil, fmt.Errorf("manifest %s: workdir %q must be an absolute path", filepath.Join(dir, ManifestFile), m.Workdir)
	}
	if st, err := os.Stat(m.Workdir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("manifest %s: workdir %s is not a directory", filepath.Join(dir, ManifestFile), m.Workdir)
	}
	if len(strings.Fields(m.Fprocess)) == 0 {
		return nil, fmt.Errorf("manifest %s: fprocess is empty", filepath.Join(dir, ManifestFile))
	}
	return &m, nil
}

func checkContainer(path string, m *Manifest) error {
	c := m.Container
	if !filepath.IsAbs(m.Workdir) {
		return fmt.Errorf("manifest %s: workdir %q must be an absolute path inside the image", path, m.Workdir)
	}
	if st, err := os.Stat(c.Rootfs); err != nil || !st.IsDir() || !filepath.IsAbs(c.Rootfs) {
		return fmt.Errorf("manifest %s: rootfs %s is not a directory", path, c.Rootfs)
	}
	if len(c.Argv) == 0 {
		return fmt.Errorf("manifest %s: the image has neither an entrypoint nor a cmd", path)
	}
	if c.UID < 0 || c.GID < 0 {
		return fmt.Errorf("manifest %s: uid %d and gid %d must not be negative", path, c.UID, c.GID)
	}
	return nil
}
