package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metricsServer serves /metrics: regcred's own metrics (a registry passed
// in, not a process-wide one) with controller-runtime's and client-go's.
type metricsServer struct {
	addr    string
	gather  prometheus.Gatherer
	timeout time.Duration
}

func newMetricsServer(addr string, own *prometheus.Registry) *metricsServer {
	return &metricsServer{addr: addr, gather: prometheus.Gatherers{ctrlmetrics.Registry, own}, timeout: 5 * time.Second}
}

// NeedLeaderElection is false: every replica serves its metrics.
func (m *metricsServer) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (m *metricsServer) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.gather, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: m.timeout}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
