package app

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// newMetricsServer serves /metrics: regcred's own metrics (a registry
// passed in, not a process-wide one) with controller-runtime's and
// client-go's. On every replica, and a manager.Server: the manager starts
// it before its caches, so that a replica whose caches cannot sync (RBAC
// not applied yet, the API server down) shows client-go's request errors
// that say why.
func newMetricsServer(addr string, own *prometheus.Registry) *manager.Server {
	const timeout = 5 * time.Second
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{ctrlmetrics.Registry, own}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	shutdown := timeout
	return &manager.Server{
		Name:            "metrics",
		Server:          &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: timeout},
		ShutdownTimeout: &shutdown,
	}
}
