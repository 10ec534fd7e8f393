package functions

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openfaas/faas-provider/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSecretsLifecycle(t *testing.T) {
	h, client := newHandlers(secret("postgres-password"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.x", Namespace: ns, Labels: map[string]string{"owner": "helm"}}, Type: corev1.SecretTypeOpaque},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: ns}, Type: corev1.SecretTypeServiceAccountToken})
	ctx := context.Background()
	s := types.Secret{Name: "api-key", Value: "first"}
	if rec := call(t, h.Secrets, http.MethodPost, "/system/secrets", s, nil); rec.Code != http.StatusAccepted {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h.Secrets, http.MethodPost, "/system/secrets", s, nil); rec.Code != http.StatusConflict {
		t.Errorf("create again: %d, want 409", rec.Code)
	}
	got, _ := client.CoreV1().Secrets(ns).Get(ctx, "api-key", metav1.GetOptions{})
	if string(got.Data["api-key"]) != "first" {
		t.Errorf("data %v: a function reads /var/openfaas/secrets/api-key", got.Data)
	}
	s.Value = "second"
	if rec := call(t, h.Secrets, http.MethodPut, "/system/secrets", s, nil); rec.Code != http.StatusAccepted {
		t.Fatalf("update: %d %s", rec.Code, rec.Body)
	}
	got, _ = client.CoreV1().Secrets(ns).Get(ctx, "api-key", metav1.GetOptions{})
	if string(got.Data["api-key"]) != "second" {
		t.Errorf("data after update %v", got.Data)
	}

	rec := call(t, h.Secrets, http.MethodGet, "/system/secrets", nil, nil)
	if strings.Contains(rec.Body.String(), "second") || strings.Contains(rec.Body.String(), "s3cret") {
		t.Fatalf("the list shows a value: %s", rec.Body)
	}
	var list []types.Secret
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "api-key" || list[1].Name != "postgres-password" {
		t.Errorf("list %+v, want only the functions' Opaque secrets", list)
	}

	if rec := call(t, h.Secrets, http.MethodDelete, "/system/secrets", types.Secret{Name: "api-key"}, nil); rec.Code != http.StatusAccepted {
		t.Errorf("delete: %d", rec.Code)
	}
	for method, body := range map[string]types.Secret{
		http.MethodDelete: {Name: "api-key"},
		http.MethodPut:    {Name: "api-key", Value: "x"},
	} {
		if rec := call(t, h.Secrets, method, "/system/secrets", body, nil); rec.Code != http.StatusNotFound {
			t.Errorf("%s of a missing secret: %d, want 404", method, rec.Code)
		}
	}
	for _, bad := range []types.Secret{{Name: "Bad Name", Value: "x"}, {Name: "empty"}, {Name: "x", Value: "y", Namespace: "default"}} {
		if rec := call(t, h.Secrets, http.MethodPost, "/system/secrets", bad, nil); rec.Code != http.StatusBadRequest {
			t.Errorf("create %+v: %d, want 400", bad, rec.Code)
		}
	}
}
