// Command ads-kube-provider is our OpenFaaS provider for Kubernetes, run by the OpenFaaS
// chart in faas-netes's place (the gateway's sidecar, port 8081, the same environment): the
// gateway calls it to deploy, update, remove, list, scale and invoke functions, each a
// Deployment and a Service in the function namespace. It needs no licence check and no
// Internet access. Built on faas-provider (MIT) and client-go.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"adserver/kubeprovider/internal/functions"
	bootstrap "github.com/openfaas/faas-provider"
	"github.com/openfaas/faas-provider/logs"
	"github.com/openfaas/faas-provider/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Set at build time (-ldflags "-X main.version=... -X main.commit=...").
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("ads-kube-provider: ")
	cfg, err := readConfig(os.LookupEnv)
	if err != nil {
		log.Fatal(err)
	}
	restConfig, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("not in a cluster: %v", err)
	}
	// Endpoints is deprecated in favour of EndpointSlices, which the chart's CE role does not
	// grant; the API server's warning on every watch would only fill the log.
	restConfig.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	handlers, err := newHandlers(ctx, client, cfg)
	if err != nil {
		log.Fatal(err)
	}
	port := cfg.Port
	log.Printf("%s (%s) serving namespace %s on :%d", version, commit, cfg.Functions.Namespace, port)
	bootstrap.Serve(ctx, handlers, &types.FaaSConfig{
		TCPPort:         &port,
		ReadTimeout:     cfg.ReadTimeout,
		WriteTimeout:    cfg.WriteTimeout,
		EnableHealth:    true,
		EnableBasicAuth: cfg.BasicAuth,
		SecretMountPath: cfg.SecretMountPath,
	})
}

// newHandlers wires every provider route; it returns once the Endpoints cache has synced, so
// the first invocation already finds its replicas.
func newHandlers(ctx context.Context, client kubernetes.Interface, cfg config) (*types.FaaSHandlers, error) {
	ns := cfg.Functions.Namespace
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	endpoints := factory.Core().V1().Endpoints()
	endpoints.Informer() // registered before Start
	factory.Start(ctx.Done())
	for informer, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			log.Printf("cache of %v did not sync", informer)
			return nil, ctx.Err()
		}
	}
	resolver := &functions.Resolver{Endpoints: endpoints.Lister().Endpoints(ns), Namespace: ns}
	fn := functions.Handlers{Client: client, Options: cfg.Functions}
	// Three replicas at most, each given 2 s to accept the connection (a live pod accepts at
	// once; a pod on a lost node never answers).
	invoke := &functions.Proxy{Resolver: resolver, Client: functions.NewProxyClient(2*time.Second, cfg.WriteTimeout), Attempts: 3}
	return &types.FaaSHandlers{
		FunctionProxy:  invoke.ServeHTTP,
		FunctionLister: fn.List,
		DeployFunction: fn.Deploy,
		UpdateFunction: fn.Update,
		DeleteFunction: fn.Delete,
		FunctionStatus: fn.Get,
		ScaleFunction:  fn.Scale,
		Secrets:        fn.Secrets,
		Logs:           logs.NewLogHandlerFunc(functions.LogRequester{Client: client, Namespace: ns}, cfg.WriteTimeout),
		ListNamespaces: jsonHandler([]string{ns}),
		Info: jsonHandler(types.ProviderInfo{
			Name:          "ads-kube-provider",
			Orchestration: "kubernetes",
			Version:       &types.VersionInfo{Release: version, SHA: commit},
		}),
		Health: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) },
	}, nil
}

func jsonHandler(v any) http.HandlerFunc {
	body, _ := json.Marshal(v)
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}
