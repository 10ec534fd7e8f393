// Package images finds the locally built "images" that replicas run.
//
// There is no image runtime on our machines: the orchestrator turns each
// `faas-cli build --shrinkwrap` context into a directory under --images-dir,
// named after the image reference in stack.yml, holding an image.json
// manifest that says where the code lives, what to run and with which
// environment. The directory may be a symlink to an immutable digest
// directory; we resolve it at deploy time so that a later rebuild is only
// picked up by a redeploy, as with a real registry tag.
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
	Workdir  string            `json:"workdir"`
	Fprocess string            `json:"fprocess"`
	Env      map[string]string `json:"env"`
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
	if !filepath.IsAbs(m.Workdir) {
		return nil, fmt.Errorf("manifest %s: workdir %q must be an absolute path", filepath.Join(dir, ManifestFile), m.Workdir)
	}
	if st, err := os.Stat(m.Workdir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("manifest %s: workdir %s is not a directory", filepath.Join(dir, ManifestFile), m.Workdir)
	}
	if len(strings.Fields(m.Fprocess)) == 0 {
		return nil, fmt.Errorf("manifest %s: fprocess is empty", filepath.Join(dir, ManifestFile))
	}
	if m.Env == nil {
		m.Env = map[string]string{}
	}
	return &m, nil
}
