package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if deps, err := Load(dir); err != nil || len(deps) != 0 {
		t.Fatalf("empty dir: %v %v", deps, err)
	}
	labels := map[string]string{"com.openfaas.scale.min": "2"}
	in := []Deployment{
		{Spec: types.FunctionDeployment{Service: "zeta", Image: "ads/z:1"}, ImageDir: "/img/z", Replicas: 1, CreatedAt: time.Unix(100, 0).UTC()},
		{Spec: types.FunctionDeployment{Service: "alpha", Image: "ads/a:1", Labels: &labels, Secrets: []string{"k"}}, ImageDir: "/img/a", Replicas: 3, CreatedAt: time.Unix(200, 0).UTC()},
	}
	if err := Save(dir, in); err != nil {
		t.Fatal(err)
	}
	out, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Spec.Service != "alpha" || out[0].Replicas != 3 || (*out[0].Spec.Labels)["com.openfaas.scale.min"] != "2" || out[1].ImageDir != "/img/z" {
		t.Errorf("round trip: %+v", out)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only %s", len(entries), FileName)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("corrupt file accepted")
	}
}
