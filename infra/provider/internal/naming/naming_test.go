package naming

import (
	"strings"
	"testing"
)

func TestValidateFunctionName(t *testing.T) {
	for _, ok := range []string{"a", "noop", "ad-serve", "f1", strings.Repeat("a", 40)} {
		if err := ValidateFunctionName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a.b", "a/b", "ü", strings.Repeat("a", 41), "a b"} {
		if err := ValidateFunctionName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSplitQualified(t *testing.T) {
	for in, want := range map[string]string{"noop": "noop", "noop.openfaas-fn": "noop"} {
		got, err := SplitQualified(in)
		if err != nil || got != want {
			t.Errorf("SplitQualified(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"noop.other", "noop.", "Bad", ".openfaas-fn", "a.b.c"} {
		if _, err := SplitQualified(bad); err == nil {
			t.Errorf("SplitQualified(%q) accepted", bad)
		}
	}
}

func TestCheckNamespace(t *testing.T) {
	if CheckNamespace("") != nil || CheckNamespace("openfaas-fn") != nil {
		t.Error("our namespace refused")
	}
	if CheckNamespace("kube-system") == nil {
		t.Error("foreign namespace accepted")
	}
}
