package nodeagent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/regcred/regcred/pkg/nodetrust/containerd"
)

// Run runs the agent with validated options until ctx ends: the agent,
// its metrics and its probes.
func Run(ctx context.Context, opts Options, restConfig *rest.Config, reg *prometheus.Registry) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	a := &Agent{
		Client: cs, Namespace: opts.Namespace, ConfigMap: opts.ConfigMap, NodeName: opts.NodeName,
		Dir: containerd.Dir{Root: opts.CertsDir}, Resync: opts.Resync, Metrics: NewMetrics(reg),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	run := func(f func(context.Context) error) {
		go func() {
			err := f(ctx)
			cancel()
			errs <- err
		}()
	}
	n := 1
	run(a.Start)
	if opts.MetricsAddr != "0" && opts.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
		run(func(ctx context.Context) error { return serve(ctx, opts.MetricsAddr, mux) })
		n++
	}
	if opts.ProbeAddr != "0" && opts.ProbeAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !a.Ready() {
				http.Error(w, "not applied yet", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		run(func(ctx context.Context) error { return serve(ctx, opts.ProbeAddr, mux) })
		n++
	}
	var all []error
	for range n {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			logr.FromContextOrDiscard(ctx).Error(err, "The node agent stopped")
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// serve serves h on addr until ctx ends.
func serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
