// Command ads-provider is our OpenFaaS provider for one machine without
// containers: the OpenFaaS gateway calls it (functions_provider_url) to
// deploy, scale and invoke functions, and it runs each replica in its own
// network namespace on a bridge, as a container runtime would.
package main

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"adserver/provider/internal/server"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("ads-provider: ")
	opts, err := parseFlags(os.Args[1:], os.LookupEnv)
	if err != nil {
		if errors.Is(err, errHelp) {
			os.Exit(0)
		}
		log.Printf("%v", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		log.Printf("fatal: %v", err)
		os.Exit(1)
	}
}

func run(o options) error {
	// The provider's only outbound HTTP is to replicas on the bridge (the
	// SDK's proxy client honours HTTP_PROXY): never send that via a proxy.
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			log.Printf("ignoring %s: invocations go straight to the replicas", k)
			os.Unsetenv(k)
		}
	}
	p, err := server.New(o.Config)
	if err != nil {
		return err
	}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.DrainBound()+30*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			log.Printf("shutdown: %v", err)
		}
	}

	apiLn, err := net.Listen("tcp", o.Listen)
	if err != nil {
		cleanup()
		return err
	}
	opsLn, err := net.Listen("tcp", o.OpsListen)
	if err != nil {
		apiLn.Close()
		cleanup()
		return err
	}
	var invokeLn net.Listener
	if o.InvokeListen != "" {
		if invokeLn, err = net.Listen("tcp", o.InvokeListen); err != nil {
			apiLn.Close()
			opsLn.Close()
			cleanup()
			return err
		}
	}
	closeListeners := func() {
		apiLn.Close()
		opsLn.Close()
		if invokeLn != nil {
			invokeLn.Close()
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := p.Start(); err != nil {
		closeListeners()
		cleanup()
		return err
	}

	apiSrv := &http.Server{Handler: p.APIHandler(), ReadHeaderTimeout: 10 * time.Second}
	opsSrv := &http.Server{Handler: p.OpsHandler(), ReadHeaderTimeout: 10 * time.Second}
	invokeSrv := &http.Server{Handler: p.InvokeHandler(), ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 3)
	go func() { errs <- apiSrv.Serve(apiLn) }()
	go func() { errs <- opsSrv.Serve(opsLn) }()
	log.Printf("serving the provider API on %s and ops (/metrics /sd /healthz) on %s", apiLn.Addr(), opsLn.Addr())
	if invokeLn != nil {
		go func() { errs <- invokeSrv.Serve(invokeLn) }()
		log.Printf("serving invocations alone (/function/{name}) on %s", invokeLn.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
		log.Printf("signal received: stopping replicas")
	case serveErr = <-errs:
		log.Printf("listener failed: %v", serveErr)
	}
	stop()

	// Stop accepting invocations and let the accepted ones finish (each
	// replica drains within its write_timeout), while the replicas stop:
	// stopping a replica waits for its in-flight requests first.
	sctx, cancel := context.WithTimeout(context.Background(), p.DrainBound()+5*time.Second)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = apiSrv.Shutdown(sctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = invokeSrv.Shutdown(sctx)
	}()
	cleanup()
	wg.Wait()
	_ = opsSrv.Shutdown(sctx)
	cancel()
	log.Printf("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}
