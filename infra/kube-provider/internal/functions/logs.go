package functions

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/logs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// LogRequester streams a function's logs from the Kubernetes API (pods/log of every replica,
// or of the one named by instance), for faas-provider's /system/logs handler.
type LogRequester struct {
	Client    kubernetes.Interface
	Namespace string
}

// Query starts one stream per pod and merges their lines into the channel, which closes when
// every stream ends (or ctx does, e.g. the handler's timeout on a follow).
func (l LogRequester) Query(ctx context.Context, req logs.Request) (<-chan logs.Message, error) {
	if req.Namespace != "" && req.Namespace != l.Namespace {
		return nil, fmt.Errorf("namespace %q is not a function namespace (only %q is)", req.Namespace, l.Namespace)
	}
	pods, err := l.Client.CoreV1().Pods(l.Namespace).List(ctx, metav1.ListOptions{LabelSelector: FunctionLabel + "=" + req.Name})
	if err != nil {
		return nil, err
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("function %q has no replicas in namespace %q", req.Name, l.Namespace)
	}
	opts := &corev1.PodLogOptions{Container: req.Name, Follow: req.Follow, Timestamps: true}
	if req.Tail > 0 {
		tail := int64(req.Tail)
		opts.TailLines = &tail
	}
	if req.Since != nil {
		since := metav1.NewTime(*req.Since)
		opts.SinceTime = &since
	}
	out := make(chan logs.Message, 100)
	var wg sync.WaitGroup
	for _, pod := range pods.Items {
		if req.Instance != "" && pod.Name != req.Instance {
			continue
		}
		wg.Add(1)
		go func(pod string) {
			defer wg.Done()
			l.stream(ctx, req.Name, pod, opts, out)
		}(pod.Name)
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

func (l LogRequester) stream(ctx context.Context, function, pod string, opts *corev1.PodLogOptions, out chan<- logs.Message) {
	body, err := l.Client.CoreV1().Pods(l.Namespace).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return // a pod not yet started or already gone has no logs to give
	}
	defer body.Close()
	lines := bufio.NewScanner(body)
	lines.Buffer(make([]byte, 64*1024), 1024*1024)
	for lines.Scan() {
		msg := ParseLogLine(lines.Text())
		msg.Name, msg.Namespace, msg.Instance = function, l.Namespace, pod
		select {
		case out <- msg:
		case <-ctx.Done():
			return
		}
	}
}

// ParseLogLine splits a line of `kubectl logs --timestamps` into its RFC 3339 timestamp and
// text; a line without one keeps its text and gets no time.
func ParseLogLine(line string) logs.Message {
	stamp, text, ok := strings.Cut(line, " ")
	if ok {
		if t, err := time.Parse(time.RFC3339Nano, stamp); err == nil {
			return logs.Message{Timestamp: t, Text: text}
		}
	}
	return logs.Message{Text: line}
}
