package functions

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	listersv1 "k8s.io/client-go/listers/core/v1"
)

// Resolver picks a ready replica of a function for the invocation proxy, round-robin over the
// addresses of its Service's Endpoints (only ready pods are there), read from an informer's
// cache: an invocation costs no API call. Going to a pod directly, not through the Service's
// cluster IP, spreads keep-alive connections over every replica as faas-netes does.
type Resolver struct {
	Endpoints listersv1.EndpointsNamespaceLister
	Namespace string
	next      atomic.Uint64
}

// Resolve answers the base URL of one ready replica of name (or name.namespace).
func (r *Resolver) Resolve(name string) (url.URL, error) {
	if fn, ns, ok := strings.Cut(name, "."); ok {
		if ns != r.Namespace {
			return url.URL{}, fmt.Errorf("namespace %q is not a function namespace", ns)
		}
		name = fn
	}
	ep, err := r.Endpoints.Get(name)
	if err != nil {
		return url.URL{}, err
	}
	var addrs []string
	for _, subset := range ep.Subsets {
		port := watchdogPort(subset.Ports)
		for _, a := range subset.Addresses {
			addrs = append(addrs, net.JoinHostPort(a.IP, strconv.Itoa(int(port))))
		}
	}
	if len(addrs) == 0 {
		return url.URL{}, fmt.Errorf("function %q has no ready replica", name)
	}
	i := r.next.Add(1) % uint64(len(addrs))
	return url.URL{Scheme: "http", Host: addrs[i]}, nil
}

func watchdogPort(ports []corev1.EndpointPort) int32 {
	for _, p := range ports {
		if p.Name == "http" || len(ports) == 1 {
			return p.Port
		}
	}
	return WatchdogPort
}
