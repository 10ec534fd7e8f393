package functions

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

const ns = "ads"

func newHandlers(objects ...runtime.Object) (Handlers, *fake.Clientset) {
	client := fake.NewClientset(objects...)
	return Handlers{Client: client, Options: Options{
		Namespace: ns, ImagePullPolicy: corev1.PullAlways, HTTPProbe: true,
		Readiness: Probe{PeriodSeconds: 2, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
		Liveness:  Probe{PeriodSeconds: 2, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
	}}, client
}

func call(t *testing.T, handler http.HandlerFunc, method, target string, body any, vars map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var payload string
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		payload = string(b)
	}
	req := httptest.NewRequest(method, target, strings.NewReader(payload))
	if vars != nil {
		req = mux.SetURLVars(req, vars)
	}
	rec := httptest.NewRecorder()
	handler(rec, req)
	return rec
}

func secret(name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{name: []byte("s3cret")}}
}

func serveRequest() types.FunctionDeployment {
	return types.FunctionDeployment{
		Service:                "serve",
		Image:                  "ads/serve:0.1.0",
		EnvProcess:             "python index.py",
		EnvVars:                map[string]string{"write_timeout": "60s", "LOG_LEVEL": "INFO"},
		Secrets:                []string{"click-signing-key"},
		Labels:                 &map[string]string{"com.openfaas.scale.min": "2", "tier": "edge"},
		Annotations:            &map[string]string{"prometheus.io.scrape": "true"},
		Limits:                 &types.FunctionResources{Memory: "256Mi", CPU: "500m"},
		Requests:               &types.FunctionResources{Memory: "128Mi"},
		Constraints:            []string{"kubernetes.io/os=linux"},
		ReadOnlyRootFilesystem: true,
	}
}

func TestDeployCreatesDeploymentAndServiceLikeFaasNetes(t *testing.T) {
	h, client := newHandlers(secret("click-signing-key"))
	rec := call(t, h.Deploy, http.MethodPost, "/system/functions", serveRequest(), nil)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", rec.Code, rec.Body)
	}
	ctx := context.Background()
	d, err := client.AppsV1().Deployments(ns).Get(ctx, "serve", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want com.openfaas.scale.min 2", *d.Spec.Replicas)
	}
	pod := d.Spec.Template
	if pod.Labels[FunctionLabel] != "serve" || pod.Labels["tier"] != "edge" || d.Spec.Selector.MatchLabels[FunctionLabel] != "serve" {
		t.Errorf("labels %v selector %v", pod.Labels, d.Spec.Selector.MatchLabels)
	}
	if pod.Annotations["prometheus.io.scrape"] != "true" {
		t.Errorf("annotations %v", pod.Annotations)
	}
	c := pod.Spec.Containers[0]
	if c.Image != "ads/serve:0.1.0" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("image %s policy %s", c.Image, c.ImagePullPolicy)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["fprocess"] != "python index.py" || env["LOG_LEVEL"] != "INFO" {
		t.Errorf("env %v", env)
	}
	if c.Resources.Limits.Memory().String() != "256Mi" || c.Resources.Limits.Cpu().String() != "500m" || c.Resources.Requests.Memory().String() != "128Mi" {
		t.Errorf("resources %v", c.Resources)
	}
	if !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("read-only root filesystem not set")
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["temp"] != "/tmp" || mounts["secrets"] != "/var/openfaas/secrets" {
		t.Errorf("mounts %v", mounts)
	}
	if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/_/ready" ||
		c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/_/health" || c.ReadinessProbe.PeriodSeconds != 2 {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	if pod.Spec.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("node selector %v", pod.Spec.NodeSelector)
	}
	if spread := pod.Spec.TopologySpreadConstraints; len(spread) != 1 || spread[0].TopologyKey != "kubernetes.io/hostname" ||
		spread[0].WhenUnsatisfiable != corev1.ScheduleAnyway || spread[0].LabelSelector.MatchLabels[FunctionLabel] != "serve" {
		t.Errorf("topology spread %+v", spread)
	}
	if *pod.Spec.TerminationGracePeriodSeconds != 62 {
		t.Errorf("grace %d, want write_timeout + 2 s", *pod.Spec.TerminationGracePeriodSeconds)
	}
	svc, err := client.CoreV1().Services(ns).Get(ctx, "serve", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[FunctionLabel] != "serve" || svc.Spec.Ports[0].Port != 8080 {
		t.Errorf("service %+v", svc.Spec)
	}
	if rec := call(t, h.Deploy, http.MethodPost, "/system/functions", serveRequest(), nil); rec.Code != http.StatusConflict {
		t.Errorf("second deploy: %d, want 409", rec.Code)
	}
}

func TestDeployRefusesBadRequestsWithEveryProblem(t *testing.T) {
	h, client := newHandlers()
	cases := map[string]struct {
		req  types.FunctionDeployment
		want []string
	}{
		"invalid fields": {
			req:  types.FunctionDeployment{Service: "Bad_Name", Limits: &types.FunctionResources{Memory: "lots"}, Constraints: []string{"nokey"}},
			want: []string{"DNS label", "image is required", "lots", "nokey"},
		},
		"missing secret": {
			req:  types.FunctionDeployment{Service: "bid", Image: "ads/bid:0.1.0", Secrets: []string{"absent"}},
			want: []string{"absent", "do not exist"},
		},
		"other namespace": {
			req:  types.FunctionDeployment{Service: "bid", Image: "ads/bid:0.1.0", Namespace: "kube-system"},
			want: []string{"kube-system", "not a function namespace"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rec := call(t, h.Deploy, http.MethodPost, "/system/functions", tc.req, nil)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", rec.Code, rec.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("%q lacks %q", rec.Body, w)
				}
			}
		})
	}
	if list, _ := client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("a refused deploy left %d deployments", len(list.Items))
	}
	if rec := call(t, h.Deploy, http.MethodPost, "/system/functions", nil, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("empty body: %d", rec.Code)
	}
}

func TestUpdateKeepsScaledReplicasAndIs404ForUnknown(t *testing.T) {
	h, client := newHandlers(secret("click-signing-key"))
	req := serveRequest()
	if rec := call(t, h.Update, http.MethodPut, "/system/functions", req, nil); rec.Code != http.StatusNotFound {
		t.Fatalf("update of unknown: %d, want 404 (faas-cli then deploys)", rec.Code)
	}
	call(t, h.Deploy, http.MethodPost, "/system/functions", req, nil)
	call(t, h.Scale, http.MethodPost, "/system/scale-function/serve", types.ScaleServiceRequest{ServiceName: "serve", Replicas: 4}, map[string]string{"name": "serve"})
	req.Image = "ads/serve:0.2.0"
	if rec := call(t, h.Update, http.MethodPut, "/system/functions", req, nil); rec.Code != http.StatusAccepted {
		t.Fatalf("update: %d %s", rec.Code, rec.Body)
	}
	d, _ := client.AppsV1().Deployments(ns).Get(context.Background(), "serve", metav1.GetOptions{})
	if d.Spec.Template.Spec.Containers[0].Image != "ads/serve:0.2.0" || *d.Spec.Replicas != 4 {
		t.Errorf("image %s replicas %d, want the new image and the 4 replicas kept", d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas)
	}
}

func TestListAndStatusReportReplicas(t *testing.T) {
	h, client := newHandlers(secret("click-signing-key"))
	call(t, h.Deploy, http.MethodPost, "/system/functions", serveRequest(), nil)
	call(t, h.Deploy, http.MethodPost, "/system/functions", types.FunctionDeployment{Service: "bid", Image: "ads/bid:0.1.0"}, nil)
	ctx := context.Background()
	d, _ := client.AppsV1().Deployments(ns).Get(ctx, "serve", metav1.GetOptions{})
	d.Status.AvailableReplicas = 1
	if _, err := client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A Deployment that is not a function is never listed.
	other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "kafka-connector", Namespace: ns}}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rec := call(t, h.List, http.MethodGet, "/system/functions?namespace=ads", nil, nil)
	var list []types.FunctionStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	if len(list) != 2 || list[0].Name != "bid" || list[1].Name != "serve" {
		t.Fatalf("list %+v", list)
	}
	s := list[1]
	if s.Replicas != 2 || s.AvailableReplicas != 1 || s.Image != "ads/serve:0.1.0" || s.EnvProcess != "python index.py" {
		t.Errorf("status %+v", s)
	}
	if (*s.Labels)["tier"] != "edge" || s.Secrets[0] != "click-signing-key" || s.Limits.Memory != "256Mi" || !s.ReadOnlyRootFilesystem {
		t.Errorf("status %+v", s)
	}
	if _, has := (*s.Labels)[FunctionLabel]; has {
		t.Error("the internal faas_function label is shown")
	}

	rec = call(t, h.Get, http.MethodGet, "/system/function/serve", nil, map[string]string{"name": "serve"})
	var one types.FunctionStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil || one.AvailableReplicas != 1 {
		t.Errorf("status: %d %s", rec.Code, rec.Body)
	}
	for _, name := range []string{"absent", "kafka-connector"} {
		if rec := call(t, h.Get, http.MethodGet, "/system/function/"+name, nil, map[string]string{"name": name}); rec.Code != http.StatusNotFound {
			t.Errorf("status of %s: %d, want 404", name, rec.Code)
		}
	}
	if rec := call(t, h.List, http.MethodGet, "/system/functions?namespace=other", nil, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("list of another namespace: %d, want 400", rec.Code)
	}
}

func TestScaleSetsReplicas(t *testing.T) {
	h, client := newHandlers()
	call(t, h.Deploy, http.MethodPost, "/system/functions", types.FunctionDeployment{Service: "bid", Image: "ads/bid:0.1.0"}, nil)
	vars := map[string]string{"name": "bid"}
	if rec := call(t, h.Scale, http.MethodPost, "/system/scale-function/bid", types.ScaleServiceRequest{ServiceName: "bid", Replicas: 3}, vars); rec.Code != http.StatusAccepted {
		t.Fatalf("scale: %d %s", rec.Code, rec.Body)
	}
	d, _ := client.AppsV1().Deployments(ns).Get(context.Background(), "bid", metav1.GetOptions{})
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *d.Spec.Replicas)
	}
	if rec := call(t, h.Scale, http.MethodPost, "/system/scale-function/nope", types.ScaleServiceRequest{Replicas: 1}, map[string]string{"name": "nope"}); rec.Code != http.StatusNotFound {
		t.Errorf("scale of unknown: %d, want 404", rec.Code)
	}
	if rec := call(t, h.Scale, http.MethodPost, "/system/scale-function/bid", types.ScaleServiceRequest{ServiceName: "serve", Replicas: 1}, vars); rec.Code != http.StatusBadRequest {
		t.Errorf("mismatched name: %d, want 400", rec.Code)
	}
}

func TestDeleteRemovesDeploymentAndServiceThenDeployAgain(t *testing.T) {
	h, client := newHandlers()
	req := types.FunctionDeployment{Service: "bid", Image: "ads/bid:0.1.0"}
	call(t, h.Deploy, http.MethodPost, "/system/functions", req, nil)
	del := types.DeleteFunctionRequest{FunctionName: "bid", Namespace: ns}
	if rec := call(t, h.Delete, http.MethodDelete, "/system/functions", del, nil); rec.Code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	ctx := context.Background()
	if _, err := client.AppsV1().Deployments(ns).Get(ctx, "bid", metav1.GetOptions{}); err == nil {
		t.Error("deployment left")
	}
	if _, err := client.CoreV1().Services(ns).Get(ctx, "bid", metav1.GetOptions{}); err == nil {
		t.Error("service left")
	}
	if rec := call(t, h.Delete, http.MethodDelete, "/system/functions", del, nil); rec.Code != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", rec.Code)
	}
	if rec := call(t, h.Deploy, http.MethodPost, "/system/functions", req, nil); rec.Code != http.StatusAccepted {
		t.Errorf("deploy after remove: %d %s", rec.Code, rec.Body)
	}
}
