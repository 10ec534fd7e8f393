// Package naming holds the rules for function names and the one namespace
// this provider serves, shared by the API and the supervisor.
package naming

import (
	"fmt"
	"regexp"
	"strings"
)

// Namespace is the only function namespace, as in OpenFaaS CE.
const Namespace = "openfaas-fn"

// MaxFunctionNameLen leaves room in replica names, log file names and
// Prometheus labels; Kubernetes would allow 63.
const MaxFunctionNameLen = 40

var functionNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidateFunctionName accepts DNS-label style names: [a-z0-9-], starting
// and ending with a letter or digit, at most 40 characters. Dots are
// refused because the gateway writes "name.namespace".
func ValidateFunctionName(name string) error {
	if name == "" {
		return fmt.Errorf("function name is required")
	}
	if len(name) > MaxFunctionNameLen || !functionNameRE.MatchString(name) {
		return fmt.Errorf("invalid function name %q: use at most %d characters of [a-z0-9-], starting and ending with a letter or digit", name, MaxFunctionNameLen)
	}
	return nil
}

// CheckNamespace accepts an empty namespace (meaning ours) or ours.
func CheckNamespace(ns string) error {
	if ns == "" || ns == Namespace {
		return nil
	}
	return fmt.Errorf("namespace %q is not supported: this provider only serves %q", ns, Namespace)
}

// SplitQualified turns "name" or "name.openfaas-fn" (the gateway's form)
// into the function name, checking the namespace part and the name.
func SplitQualified(qualified string) (string, error) {
	name, ns, found := strings.Cut(qualified, ".")
	if found {
		if err := CheckNamespace(ns); err != nil {
			return "", err
		}
		if ns == "" {
			return "", fmt.Errorf("invalid function name %q", qualified)
		}
	}
	if err := ValidateFunctionName(name); err != nil {
		return "", err
	}
	return name, nil
}
