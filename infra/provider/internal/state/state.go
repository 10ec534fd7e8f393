// Package state persists deployments in <state-dir>/deployments.json so that
// a restarted provider re-creates every function it had, as a Kubernetes
// cluster would after a node reboot. Replicas themselves are not persisted:
// their namespaces, addresses and processes are rebuilt from scratch.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/fsutil"
)

// FileName is the deployments file inside the state directory.
const FileName = "deployments.json"

// currentVersion is bumped on incompatible changes of the file format.
const currentVersion = 1

// Deployment is one function as the provider remembers it.
type Deployment struct {
	// Spec is the request as accepted (namespace normalised).
	Spec types.FunctionDeployment `json:"spec"`
	// ImageDir is the image directory resolved (symlinks followed) at deploy time.
	ImageDir string `json:"imageDir"`
	// Replicas is the desired replica count.
	Replicas int `json:"replicas"`
	// CreatedAt is when the function was first deployed.
	CreatedAt time.Time `json:"createdAt"`
}

type file struct {
	Version     int          `json:"version"`
	Deployments []Deployment `json:"deployments"`
}

// Load reads the deployments of dir; a missing file means none.
func Load(dir string) ([]Deployment, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	if f.Version != currentVersion {
		return nil, fmt.Errorf("%s: unsupported version %d", filepath.Join(dir, FileName), f.Version)
	}
	return f.Deployments, nil
}

// Save writes the deployments of dir atomically, sorted by name.
func Save(dir string, deps []Deployment) error {
	sorted := append([]Deployment(nil), deps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Spec.Service < sorted[j].Spec.Service })
	if sorted == nil {
		sorted = []Deployment{}
	}
	data, err := json.MarshalIndent(file{Version: currentVersion, Deployments: sorted}, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, FileName), append(data, '\n'), 0o600)
}
