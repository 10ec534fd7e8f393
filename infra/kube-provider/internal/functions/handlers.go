package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// maxBody bounds a request body: a deployment or a secret is a few kilobytes.
const maxBody = 1 << 20

// Handlers serve the provider API's function routes against one function namespace.
type Handlers struct {
	Client  kubernetes.Interface
	Options Options
}

// namespace is the request's namespace (query or body), which must be the function namespace
// or empty: this provider, like faas-netes CE, manages one namespace.
func (h Handlers) namespace(r *http.Request, fromBody string) (string, error) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = fromBody
	}
	if ns != "" && ns != h.Options.Namespace {
		return "", badRequest("namespace %q is not a function namespace (only %q is)", ns, h.Options.Namespace)
	}
	return h.Options.Namespace, nil
}

// fail answers err: 400 for the caller's mistakes, 404/409 as Kubernetes reports them, else 500.
func fail(w http.ResponseWriter, what string, err error) {
	var bad *BadRequest
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &bad):
		status = http.StatusBadRequest
	case apierrors.IsNotFound(err):
		status = http.StatusNotFound
	case apierrors.IsAlreadyExists(err):
		status = http.StatusConflict
	case apierrors.IsInvalid(err):
		status = http.StatusBadRequest
	}
	if status == http.StatusInternalServerError {
		log.Printf("%s: %v", what, err)
	}
	http.Error(w, fmt.Sprintf("%s: %v", what, err), status)
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("reading the body: %v", err)
	}
	if len(body) > maxBody {
		return badRequest("the body is larger than %d bytes", maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("the body is not valid JSON for this route: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h Handlers) deployment(ctx context.Context, name string) (*appsv1.Deployment, error) {
	d, err := h.Client.AppsV1().Deployments(h.Options.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if d.Labels[FunctionLabel] != name {
		return nil, apierrors.NewNotFound(appsv1.Resource("deployments"), name)
	}
	return d, nil
}

// checkSecrets fails with 400 naming every secret the function asks for that does not exist,
// instead of a Deployment whose pods never start.
func (h Handlers) checkSecrets(ctx context.Context, names []string) error {
	var missing []string
	for _, name := range names {
		_, err := h.Client.CoreV1().Secrets(h.Options.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = append(missing, name)
		} else if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return badRequest("secrets %v do not exist in namespace %q (faas-cli secret create)", missing, h.Options.Namespace)
	}
	return nil
}

// readDeployment decodes and validates a deployment request.
func (h Handlers) readDeployment(r *http.Request) (types.FunctionDeployment, error) {
	var req types.FunctionDeployment
	if err := decode(r, &req); err != nil {
		return req, err
	}
	ns, err := h.namespace(r, req.Namespace)
	if err != nil {
		return req, err
	}
	req.Namespace = ns
	if err := Validate(req); err != nil {
		return req, err
	}
	return req, h.checkSecrets(r.Context(), req.Secrets)
}

// Deploy creates the function's Deployment (com.openfaas.scale.min replicas) and Service: 202.
func (h Handlers) Deploy(w http.ResponseWriter, r *http.Request) {
	req, err := h.readDeployment(r)
	if err != nil {
		fail(w, "deploy", err)
		return
	}
	d, err := h.Options.Deployment(req, minReplicas(req))
	if err != nil {
		fail(w, "deploy", err)
		return
	}
	ctx := r.Context()
	if _, err := h.Client.AppsV1().Deployments(h.Options.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		fail(w, "deploy "+req.Service, err)
		return
	}
	if err := h.applyService(ctx, req); err != nil {
		fail(w, "deploy "+req.Service+": service", err)
		return
	}
	log.Printf("deployed %s (%s)", req.Service, req.Image)
	w.WriteHeader(http.StatusAccepted)
}

// Update replaces an existing function's pod template and Service, keeping its replicas
// (an autoscaler owns them) but never fewer than com.openfaas.scale.min: 202, or 404.
func (h Handlers) Update(w http.ResponseWriter, r *http.Request) {
	req, err := h.readDeployment(r)
	if err != nil {
		fail(w, "update", err)
		return
	}
	ctx := r.Context()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := h.deployment(ctx, req.Service)
		if err != nil {
			return err
		}
		replicas := minReplicas(req)
		if current.Spec.Replicas != nil && *current.Spec.Replicas > replicas {
			replicas = *current.Spec.Replicas
		}
		want, err := h.Options.Deployment(req, replicas)
		if err != nil {
			return err
		}
		current.Labels, current.Annotations, current.Spec = want.Labels, want.Annotations, want.Spec
		_, err = h.Client.AppsV1().Deployments(h.Options.Namespace).Update(ctx, current, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		fail(w, "update "+req.Service, err)
		return
	}
	if err := h.applyService(ctx, req); err != nil {
		fail(w, "update "+req.Service+": service", err)
		return
	}
	log.Printf("updated %s (%s)", req.Service, req.Image)
	w.WriteHeader(http.StatusAccepted)
}

// applyService creates the function's Service, or brings an existing one to the wanted spec
// (keeping its cluster IP).
func (h Handlers) applyService(ctx context.Context, req types.FunctionDeployment) error {
	want := h.Options.Service(req)
	services := h.Client.CoreV1().Services(h.Options.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := services.Get(ctx, req.Service, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = services.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		current.Labels = want.Labels
		current.Spec.Selector = want.Spec.Selector
		current.Spec.Ports = want.Spec.Ports
		_, err = services.Update(ctx, current, metav1.UpdateOptions{})
		return err
	})
}

// Delete removes the function's Deployment (its pods with it) and Service: 202, or 404.
func (h Handlers) Delete(w http.ResponseWriter, r *http.Request) {
	var req types.DeleteFunctionRequest
	if err := decode(r, &req); err != nil {
		fail(w, "delete", err)
		return
	}
	if _, err := h.namespace(r, req.Namespace); err != nil {
		fail(w, "delete", err)
		return
	}
	if req.FunctionName == "" {
		fail(w, "delete", badRequest("functionName is required"))
		return
	}
	ctx := r.Context()
	if _, err := h.deployment(ctx, req.FunctionName); err != nil {
		fail(w, "delete "+req.FunctionName, err)
		return
	}
	// In the background: the Deployment goes at once (so a deploy right after a remove creates
	// it anew), its pods follow.
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	if err := h.Client.AppsV1().Deployments(h.Options.Namespace).Delete(ctx, req.FunctionName, opts); err != nil && !apierrors.IsNotFound(err) {
		fail(w, "delete "+req.FunctionName, err)
		return
	}
	if err := h.Client.CoreV1().Services(h.Options.Namespace).Delete(ctx, req.FunctionName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		fail(w, "delete "+req.FunctionName+": service", err)
		return
	}
	log.Printf("deleted %s", req.FunctionName)
	w.WriteHeader(http.StatusAccepted)
}

// List answers every function in the namespace, sorted by name.
func (h Handlers) List(w http.ResponseWriter, r *http.Request) {
	if _, err := h.namespace(r, ""); err != nil {
		fail(w, "list", err)
		return
	}
	list, err := h.Client.AppsV1().Deployments(h.Options.Namespace).List(r.Context(), metav1.ListOptions{LabelSelector: FunctionLabel})
	if err != nil {
		fail(w, "list", err)
		return
	}
	out := make([]types.FunctionStatus, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, Status(&list.Items[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// Get answers one function's status: replicas wanted and available, 404 when unknown.
func (h Handlers) Get(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if _, err := h.namespace(r, ""); err != nil {
		fail(w, "status", err)
		return
	}
	d, err := h.deployment(r.Context(), name)
	if err != nil {
		fail(w, "status "+name, err)
		return
	}
	writeJSON(w, http.StatusOK, Status(d))
}

// Scale sets the function's replicas (the gateway's scale-from-zero, faas-cli scale): 202.
func (h Handlers) Scale(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	var req types.ScaleServiceRequest
	if err := decode(r, &req); err != nil {
		fail(w, "scale", err)
		return
	}
	if _, err := h.namespace(r, req.Namespace); err != nil {
		fail(w, "scale", err)
		return
	}
	if req.ServiceName != "" && req.ServiceName != name {
		fail(w, "scale", badRequest("serviceName %q differs from the path's %q", req.ServiceName, name))
		return
	}
	if req.Replicas > 1000 {
		fail(w, "scale", badRequest("replicas %d is more than 1000", req.Replicas))
		return
	}
	ctx := r.Context()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := h.deployment(ctx, name)
		if err != nil {
			return err
		}
		replicas := int32(req.Replicas)
		d.Spec.Replicas = &replicas
		_, err = h.Client.AppsV1().Deployments(h.Options.Namespace).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		fail(w, "scale "+name, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
