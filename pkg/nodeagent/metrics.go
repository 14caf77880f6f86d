package nodeagent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/nodetrust/containerd"
)

// The stages an apply fails at, as regcred_node_agent_apply_errors_total
// labels them.
const (
	// StageRead: the published ConfigMap is not a valid document, or one
	// of its entries is not.
	StageRead = "read"
	// StageFiles: a host's files could not be written or removed.
	StageFiles = "files"
	// StageStatus: the Node's annotation could not be patched.
	StageStatus = "status"
)

// Metrics records what the agent applied on its node.
type Metrics struct {
	hosts     *prometheus.GaugeVec
	conflicts prometheus.Gauge
	errors    *prometheus.CounterVec
	files     *prometheus.CounterVec
	lastApply prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		hosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regcred_node_agent_hosts",
			Help: "Registry hosts whose containerd files are in place on this node, by mode (ca, skip-verify, plain-http).",
		}, []string{"mode"}),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regcred_node_agent_conflicts",
			Help: "Registry hosts left alone on this node because files regcred did not write are there (an admin's own hosts.toml).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_node_agent_apply_errors_total",
			Help: "Failures to apply what nodes must trust, by stage (read: the published ConfigMap or an entry is invalid; files: a host's files could not be written or removed; status: the Node's annotation could not be patched).",
		}, []string{"stage"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_node_agent_host_changes_total",
			Help: "Registry hosts whose files the agent wrote or removed, by operation (written, removed).",
		}, []string{"operation"}),
		lastApply: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regcred_node_agent_last_apply_timestamp_seconds",
			Help: "When the agent last compared this node's files with what is published (Unix time).",
		}),
	}
	reg.MustRegister(m.hosts, m.conflicts, m.errors, m.files, m.lastApply)
	for _, s := range []string{StageRead, StageFiles, StageStatus} {
		m.errors.WithLabelValues(s)
	}
	return m
}

// Applied records a reconcile's result.
func (m *Metrics) Applied(res containerd.Result, at time.Time) {
	byMode := map[nodetrust.Mode]int{}
	for _, mode := range res.Applied {
		byMode[mode]++
	}
	for _, mode := range nodetrust.Modes {
		m.hosts.WithLabelValues(string(mode)).Set(float64(byMode[mode]))
	}
	m.conflicts.Set(float64(len(res.Conflicts)))
	m.files.WithLabelValues("written").Add(float64(len(res.Written)))
	m.files.WithLabelValues("removed").Add(float64(len(res.Removed)))
	if n := len(res.Errors); n > 0 {
		m.errors.WithLabelValues(StageFiles).Add(float64(n))
	}
	m.lastApply.Set(float64(at.Unix()))
}

// Failed counts a failure at a stage.
func (m *Metrics) Failed(stage string) { m.errors.WithLabelValues(stage).Inc() }
