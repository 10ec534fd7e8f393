package functions

import (
	"context"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/logs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestResolverRoundRobinsOverReadyReplicas(t *testing.T) {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "bid", Namespace: ns},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.244.1.5"}, {IP: "10.244.2.7"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.2.9"}},
			Ports:             []corev1.EndpointPort{{Name: "http", Port: 8080}},
		}},
	}
	empty := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "serve", Namespace: ns}}
	client := fake.NewClientset(ep, empty)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	lister := factory.Core().V1().Endpoints().Lister()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	r := &Resolver{Endpoints: lister.Endpoints(ns), Namespace: ns}

	seen := map[string]int{}
	for range 4 {
		u, err := r.Resolve("bid.ads")
		if err != nil {
			t.Fatal(err)
		}
		seen[u.Host]++
	}
	if seen["10.244.1.5:8080"] != 2 || seen["10.244.2.7:8080"] != 2 {
		t.Errorf("picked %v, want both ready replicas twice and never the unready one", seen)
	}
	for _, name := range []string{"serve", "absent", "bid.kube-system"} {
		if _, err := r.Resolve(name); err == nil {
			t.Errorf("%s resolved; the proxy must answer 503", name)
		}
	}
}

func TestLogsStreamEveryReplica(t *testing.T) {
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "bid-a", Namespace: ns, Labels: map[string]string{FunctionLabel: "bid"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bid-b", Namespace: ns, Labels: map[string]string{FunctionLabel: "bid"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "serve-a", Namespace: ns, Labels: map[string]string{FunctionLabel: "serve"}}},
	}
	client := fake.NewClientset(pods[0], pods[1], pods[2])
	l := LogRequester{Client: client, Namespace: ns}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	messages, err := l.Query(ctx, logs.Request{Name: "bid", Tail: 10})
	if err != nil {
		t.Fatal(err)
	}
	instances := map[string]bool{}
	for m := range messages {
		if m.Name != "bid" || m.Namespace != ns || m.Text == "" {
			t.Errorf("message %+v", m)
		}
		instances[m.Instance] = true
	}
	if !instances["bid-a"] || !instances["bid-b"] || instances["serve-a"] {
		t.Errorf("instances %v, want both of bid's", instances)
	}
	messages, _ = l.Query(ctx, logs.Request{Name: "bid", Instance: "bid-b"})
	for m := range messages {
		if m.Instance != "bid-b" {
			t.Errorf("instance filter let %s through", m.Instance)
		}
	}
	if _, err := l.Query(ctx, logs.Request{Name: "absent"}); err == nil {
		t.Error("logs of a function without replicas: want an error")
	}
}

func TestParseLogLine(t *testing.T) {
	m := ParseLogLine("2026-12-07T15:04:05.123456789Z {\"level\":\"INFO\"} x")
	if m.Text != "{\"level\":\"INFO\"} x" || m.Timestamp.Year() != 2026 || m.Timestamp.Nanosecond() != 123456789 {
		t.Errorf("%+v", m)
	}
	if m := ParseLogLine("no stamp here"); m.Text != "no stamp here" || !m.Timestamp.IsZero() {
		t.Errorf("%+v", m)
	}
}
