package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSanitizeRef(t *testing.T) {
	cases := map[string]string{
		"ads/noop:0.1.0":          "ads_noop_0.1.0",
		"ads/noop:latest":         "ads_noop_latest",
		"registry:5000/a/b-c_d:1": "registry_5000_a_b-c_d_1",
		"ads/x@sha256:abc":        "ads_x_sha256_abc",
		"weird name/ünïcode:1":    "weird_name__n_code_1",
		"../../etc/passwd":        ".._.._etc_passwd",
		"Already.Clean-Name_1":    "Already.Clean-Name_1",
	}
	for in, want := range cases {
		if got := SanitizeRef(in); got != want {
			t.Errorf("SanitizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateRef(t *testing.T) {
	for _, ok := range []string{"ads/noop:0.1.0", "noop", "a"} {
		if err := ValidateRef(ok); err != nil {
			t.Errorf("ValidateRef(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", ".", "..", "../x", ".hidden", strings.Repeat("a", 256)} {
		if err := ValidateRef(bad); err == nil {
			t.Errorf("ValidateRef(%q) = nil, want an error", bad)
		}
	}
}

func writeImage(t *testing.T, dir, manifest string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	code := t.TempDir()
	good := `{"ref":"ads/noop:0.1.0","workdir":"` + code + `","fprocess":"/venv/bin/python index.py","env":{"mode":"http"}}`

	// A tag directory that is a symlink to an immutable digest directory.
	digest := filepath.Join(root, ".digests", "abc123")
	writeImage(t, digest, good)
	if err := os.Symlink(digest, filepath.Join(root, "ads_noop_0.1.0")); err != nil {
		t.Fatal(err)
	}
	dir, m, err := Resolve(root, "ads/noop:0.1.0")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if dir != digest {
		t.Errorf("dir = %q, want the resolved digest directory %q", dir, digest)
	}
	if m.Workdir != code || m.Fprocess != "/venv/bin/python index.py" || m.Env["mode"] != "http" {
		t.Errorf("manifest = %+v", m)
	}

	// Untagged references fall back to :latest, as faas-cli appends it.
	writeImage(t, filepath.Join(root, "ads_other_latest"), good)
	if _, _, err := Resolve(root, "ads/other"); err != nil {
		t.Errorf("untagged ref: %v", err)
	}

	// Missing image: a NotBuiltError naming the image and the fix.
	_, _, err = Resolve(root, "ads/missing:1")
	if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "ads/missing:1 has not been built") {
		t.Errorf("missing image: err = %v", err)
	}

	// Directory without a usable manifest.
	if err := os.MkdirAll(filepath.Join(root, "ads_empty_1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Resolve(root, "ads/empty:1"); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("no manifest: err = %v", err)
	}
	for name, bad := range map[string]string{
		"ads_badjson_1": `{`,
		"ads_relwd_1":   `{"workdir":"relative","fprocess":"x"}`,
		"ads_nofproc_1": `{"workdir":"/x","fprocess":"  "}`,
	} {
		writeImage(t, filepath.Join(root, name), bad)
		ref := strings.Replace(strings.Replace(name, "_", "/", 1), "_", ":", 1)
		if _, _, err := Resolve(root, ref); !errors.Is(err, ErrNotBuilt) {
			t.Errorf("%s: err = %v, want ErrNotBuilt", ref, err)
		}
	}
}
