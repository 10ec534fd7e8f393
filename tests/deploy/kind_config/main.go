// Command kindconfig validates kind cluster configuration files the way kind reads them: the
// document must be a kind.x-k8s.io/v1alpha4 Cluster, decoded strictly into kind's own types, so
// a misspelt or misplaced field or a wrong type is an error instead of being ignored.
//
//	go run . ../../../kind-cluster.yaml
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func check(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var meta v1alpha4.TypeMeta
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return err
	}
	if meta.Kind != "Cluster" || meta.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return fmt.Errorf("kind %q, apiVersion %q: expected Cluster, kind.x-k8s.io/v1alpha4", meta.Kind, meta.APIVersion)
	}
	var cluster v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &cluster); err != nil {
		return err
	}
	if len(cluster.Nodes) == 0 {
		return fmt.Errorf("no nodes")
	}
	for i, node := range cluster.Nodes {
		if node.Role != v1alpha4.ControlPlaneRole && node.Role != v1alpha4.WorkerRole {
			return fmt.Errorf("nodes[%d]: role %q is neither control-plane nor worker", i, node.Role)
		}
		for j, m := range node.ExtraPortMappings {
			if m.ContainerPort < 1 || m.ContainerPort > 65535 || m.HostPort < 0 || m.HostPort > 65535 {
				return fmt.Errorf("nodes[%d].extraPortMappings[%d]: port out of range", i, j)
			}
		}
	}
	return nil
}

func main() {
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
		}
	}
	if failed || len(os.Args) < 2 {
		os.Exit(1)
	}
}
