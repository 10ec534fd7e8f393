package functions

import (
	"net/http"
	"sort"

	"github.com/openfaas/faas-provider/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// managedBy marks the Secrets this API created; listing shows every Opaque Secret of the
// namespace, since deploy scripts create some with kubectl.
const managedBy = "app.kubernetes.io/managed-by"

// Secrets serves /system/secrets: GET lists names (never values), POST creates (409 when it
// exists), PUT replaces (404 when it does not), DELETE removes (404 when it does not).
// A secret is a Kubernetes Secret of the function namespace with one key, its own name, which
// a function reads as /var/openfaas/secrets/<name>.
func (h Handlers) Secrets(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		h.listSecrets(w, r)
		return
	}
	var req types.Secret
	if err := decode(r, &req); err != nil {
		fail(w, "secret", err)
		return
	}
	if _, err := h.namespace(r, req.Namespace); err != nil {
		fail(w, "secret", err)
		return
	}
	if req.Name == "" || !isDNSSubdomain(req.Name) {
		fail(w, "secret", badRequest("name %q must be lower-case letters, digits, '-' and '.'", req.Name))
		return
	}
	value := req.RawValue
	if len(value) == 0 {
		value = []byte(req.Value)
	}
	secrets := h.Client.CoreV1().Secrets(h.Options.Namespace)
	ctx := r.Context()
	var err error
	switch r.Method {
	case http.MethodPost:
		if len(value) == 0 {
			fail(w, "secret "+req.Name, badRequest("value or rawValue is required"))
			return
		}
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: h.Options.Namespace, Labels: map[string]string{managedBy: "openfaas"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{req.Name: value},
		}, metav1.CreateOptions{})
	case http.MethodPut:
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := secrets.Get(ctx, req.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Data = map[string][]byte{req.Name: value}
			s.StringData = nil
			_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
			return err
		})
	case http.MethodDelete:
		err = secrets.Delete(ctx, req.Name, metav1.DeleteOptions{})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		fail(w, "secret "+req.Name, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h Handlers) listSecrets(w http.ResponseWriter, r *http.Request) {
	if _, err := h.namespace(r, ""); err != nil {
		fail(w, "secrets", err)
		return
	}
	list, err := h.Client.CoreV1().Secrets(h.Options.Namespace).List(r.Context(), metav1.ListOptions{})
	if err != nil {
		fail(w, "secrets", err)
		return
	}
	out := []types.Secret{}
	for _, s := range list.Items {
		if s.Type == corev1.SecretTypeOpaque && s.Labels["owner"] != "helm" {
			out = append(out, types.Secret{Name: s.Name, Namespace: s.Namespace})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

func isDNSSubdomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '.' {
			return false
		}
	}
	return true
}
