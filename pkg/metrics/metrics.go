// Package metrics defines regcred's Prometheus metrics, served on the
// manager's metrics endpoint.
package metrics

import (
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/pkg/secretstore"
)

// Metrics records what regcred does. Its methods satisfy the Recorder
// interfaces of the admission, configwatch, upkeep, status and recovery
// packages.
type Metrics struct {
	admissions     *prometheus.CounterVec
	injected       *prometheus.CounterVec
	secretWrites   *prometheus.CounterVec
	secretsDeleted *prometheus.CounterVec
	restored       *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	configValid    prometheus.Gauge
	tokenExpiry    *prometheus.GaugeVec
	tokenRefreshes *prometheus.CounterVec
	tokenErrors    *prometheus.CounterVec
	checkOK        *prometheus.GaugeVec
	checks         *prometheus.CounterVec
	webhookCert    *prometheus.GaugeVec
	unserved       *prometheus.CounterVec
	evictions      *prometheus.CounterVec
	recoveryEvents *prometheus.CounterVec
	trustHosts     *prometheus.GaugeVec
	trustNotes     *prometheus.GaugeVec
}

// New creates the metrics and registers them with reg; version is
// regcred's, for regcred_build_info.
func New(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_admissions_total",
			Help: "Pod admissions by outcome (patched, unchanged, failed-open, skipped).",
		}, []string{"outcome"}),
		injected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_secrets_injected_total",
			Help: "Pull secrets injected into Pods, per registry.",
		}, []string{"registry"}),
		secretWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_pull_secrets_written_total",
			Help: "Pull secrets created or updated, per registry and operation.",
		}, []string{"registry", "operation"}),
		secretsDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_pull_secrets_deleted_total",
			Help: "Pull secrets deleted because their registry no longer wants them, per registry.",
		}, []string{"registry"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_pull_secrets_restored_total",
			Help: "Pull secrets written again after someone else deleted or changed them, per registry.",
		}, []string{"registry"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_config_reloads_total",
			Help: "Config loads by result (success, rejected).",
		}, []string{"result"}),
		configValid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regcred_config_valid",
			Help: "1 when the latest change of the config loaded, 0 when it was rejected (the last good config keeps serving).",
		}),
		tokenExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regcred_token_expiry_timestamp_seconds",
			Help: "When the first of the current tokens of an expiring-credential registry (ECR; a glob registry has one per region) expires, per registry (Unix time); on the leader only.",
		}, []string{"registry"}),
		tokenRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_token_refreshes_total",
			Help: "Token refreshes of expiring-credential registries (ECR), per registry.",
		}, []string{"registry"}),
		tokenErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_token_refresh_errors_total",
			Help: "Failed token refreshes of expiring-credential registries (ECR), per registry.",
		}, []string{"registry"}),
		checkOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regcred_registry_login_ok",
			Help: "1 when the registry's credentials logged in at the last check, 0 when they did not, per registry; on the leader only.",
		}, []string{"registry"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_registry_login_checks_total",
			Help: "Login checks of registry credentials, per registry and result (ok, failed).",
		}, []string{"registry", "result"}),
		unserved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_images_unserved_total",
			Help: "Images admitted without their registry's credentials, and Pods left alone, by reason (no-registry, cluster-policy, namespace-not-selected, host-case, invalid-reference, not-carried, kubelet-tries-other, namespace-opted-out, ...).",
		}, []string{"reason"}),
		webhookCert: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regcred_webhook_certificate_expiry_timestamp_seconds",
			Help: "When the webhook's serving certificate and its CA expire, when regcred keeps them itself (--tls-secret) (Unix time).",
		}, []string{"certificate"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_recovery_evictions_total",
			Help: "Evictions of Pods that lack a pull secret, by result (evicted; blocked by a PodDisruptionBudget, or failed: tried again later).",
		}, []string{"result"}),
		recoveryEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regcred_recovery_events_total",
			Help: "Events recorded on Pods that lack a pull secret, by reason (EvictedForPullSecret, PullSecretMissing, EvictionBlocked).",
		}, []string{"reason"}),
		trustHosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regcred_node_trust_published_hosts",
			Help: "Registry hosts that nodes must trust, as the leader published them for the node agents (--node-trust-configmap), by mode (ca, skip-verify, plain-http).",
		}, []string{"mode"}),
		trustNotes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regcred_node_trust_published_notes",
			Help: "Registries left out of what nodes trust (a glob host, a caCert without a certificate) and hosts whose registries disagree, as the leader's log says.",
		}, nil),
	}
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "regcred_build_info",
		Help:        "regcred's version and the Go version it was built with; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion},
	})
	buildInfo.Set(1)
	reg.MustRegister(m.admissions, m.injected, m.secretWrites, m.secretsDeleted, m.restored, m.reloads, m.configValid,
		m.tokenExpiry, m.tokenRefreshes, m.tokenErrors, m.checkOK, m.checks, m.webhookCert, m.unserved,
		m.evictions, m.recoveryEvents, m.trustHosts, m.trustNotes, buildInfo)
	return m
}

// Admission counts one admission.
func (m *Metrics) Admission(o admission.Outcome) { m.admissions.WithLabelValues(string(o)).Inc() }

// Injected counts one pull secret injected.
func (m *Metrics) Injected(registry string) { m.injected.WithLabelValues(registry).Inc() }

// SecretEnsured counts a pull secret written; unchanged and dry-run
// outcomes write nothing and are not counted.
func (m *Metrics) SecretEnsured(registry string, o secretstore.Outcome) {
	switch o {
	case secretstore.Created, secretstore.Updated:
		m.secretWrites.WithLabelValues(registry, string(o)).Inc()
	}
}

// SecretDeleted counts a pull secret deleted.
func (m *Metrics) SecretDeleted(registry string) { m.secretsDeleted.WithLabelValues(registry).Inc() }

// SecretRestored counts a pull secret written again after someone else
// deleted or changed it.
func (m *Metrics) SecretRestored(registry string) { m.restored.WithLabelValues(registry).Inc() }

// ConfigReload counts a config load.
func (m *Metrics) ConfigReload(ok bool) {
	if ok {
		m.configValid.Set(1)
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.configValid.Set(0)
		m.reloads.WithLabelValues("rejected").Inc()
	}
}

// TokenRefreshed records a refreshed token.
func (m *Metrics) TokenRefreshed(registry string, expiresAt time.Time) {
	m.tokenRefreshes.WithLabelValues(registry).Inc()
	m.tokenExpiry.WithLabelValues(registry).Set(float64(expiresAt.Unix()))
}

// TokenRefreshFailed records a failed refresh.
func (m *Metrics) TokenRefreshFailed(registry string) { m.tokenErrors.WithLabelValues(registry).Inc() }

// TokenExpiryForgotten removes the registry's token expiry: it left the
// config, or this replica's term as the leader ended. Its counters stay.
func (m *Metrics) TokenExpiryForgotten(registry string) { m.tokenExpiry.DeleteLabelValues(registry) }

// LoginChecked records a login check.
func (m *Metrics) LoginChecked(registry string, ok bool) {
	if ok {
		m.checkOK.WithLabelValues(registry).Set(1)
		m.checks.WithLabelValues(registry, "ok").Inc()
	} else {
		m.checkOK.WithLabelValues(registry).Set(0)
		m.checks.WithLabelValues(registry, "failed").Inc()
	}
}

// LoginCheckForgotten removes the registry's last login result: it left
// the config, its check is skipped, or this replica's term as the leader
// ended. Its counters stay.
func (m *Metrics) LoginCheckForgotten(registry string) { m.checkOK.DeleteLabelValues(registry) }

// WebhookCertificate records when the webhook's serving certificate and
// its CA expire.
func (m *Metrics) WebhookCertificate(certExpiry, caExpiry time.Time) {
	m.webhookCert.WithLabelValues("serving").Set(float64(certExpiry.Unix()))
	m.webhookCert.WithLabelValues("ca").Set(float64(caExpiry.Unix()))
}

// Unserved counts an image left without its registry's credentials, or a
// Pod left alone, by reason.
func (m *Metrics) Unserved(reason plan.Reason) { m.unserved.WithLabelValues(string(reason)).Inc() }

// RecoveryEviction counts an eviction of a Pod that lacks a pull secret.
func (m *Metrics) RecoveryEviction(r recovery.EvictionResult) {
	m.evictions.WithLabelValues(string(r)).Inc()
}

// RecoveryEvent counts an Event recorded on such a Pod.
func (m *Metrics) RecoveryEvent(reason string) { m.recoveryEvents.WithLabelValues(reason).Inc() }

// NodeTrustPublished records what the leader published for the node
// agents.
func (m *Metrics) NodeTrustPublished(hosts map[nodetrust.Mode]int, notes int) {
	for _, mode := range nodetrust.Modes {
		m.trustHosts.WithLabelValues(string(mode)).Set(float64(hosts[mode]))
	}
	m.trustNotes.WithLabelValues().Set(float64(notes))
}
