package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"api-key", "db.password", "a", "x_1"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "-a", "A", "a.", "with space"} {
		if ValidateName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create("api-key", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create("api-key", []byte("v2")); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v", err)
	}
	if err := s.Update("nope", []byte("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}
	if err := s.Update("api-key", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create("db", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	names, _ := s.List()
	if !reflect.DeepEqual(names, []string{"api-key", "db"}) {
		t.Errorf("List = %v", names)
	}
	if st, _ := os.Stat(filepath.Join(dir, "api-key")); st.Mode().Perm() != 0o600 {
		t.Errorf("stored mode %v", st.Mode())
	}
	if m := s.Missing([]string{"api-key", "ghost"}); !reflect.DeepEqual(m, []string{"ghost"}) {
		t.Errorf("Missing = %v", m)
	}

	replica := filepath.Join(t.TempDir(), "secrets")
	missing, err := s.CopyTo([]string{"api-key", "ghost"}, replica)
	if err != nil || !reflect.DeepEqual(missing, []string{"ghost"}) {
		t.Fatalf("CopyTo: %v %v", missing, err)
	}
	data, _ := os.ReadFile(filepath.Join(replica, "api-key"))
	st, _ := os.Stat(filepath.Join(replica, "api-key"))
	if string(data) != "v2" || st.Mode().Perm() != 0o400 {
		t.Errorf("copy %q mode %v", data, st.Mode())
	}
	if _, err := s.CopyTo([]string{"api-key"}, replica); err != nil {
		t.Errorf("copying over a 0400 copy: %v", err)
	}

	if err := s.Delete("db"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("db"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}
