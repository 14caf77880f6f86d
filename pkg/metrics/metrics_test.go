package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/pkg/secretstore"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "1.2.3")

	m.Admission(admission.Patched)
	m.Admission(admission.Patched)
	m.Admission(admission.FailedOpen)
	m.Injected("hub")
	m.SecretEnsured("hub", secretstore.Created)
	m.SecretEnsured("hub", secretstore.Updated)
	m.SecretEnsured("hub", secretstore.Unchanged)   // writes nothing: not counted
	m.SecretEnsured("hub", secretstore.WouldCreate) // a dry run: not counted
	m.SecretDeleted("old")
	m.ConfigReload(true)
	m.ConfigReload(false)
	exp := time.Unix(1_800_000_000, 0)
	m.TokenRefreshed("ecr", exp)
	m.TokenRefreshFailed("ecr")
	m.LoginChecked("hub", true)
	m.LoginChecked("quay", false)
	m.RecoveryEviction(recovery.Evicted)
	m.RecoveryEviction(recovery.Blocked)
	m.RecoveryEviction(recovery.Blocked)
	m.RecoveryEvent(recovery.EventMissing)
	m.NodeTrustPublished(map[nodetrust.Mode]int{nodetrust.ModeCA: 2}, 1)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP regcred_admissions_total Pod admissions by outcome (patched, unchanged, failed-open, skipped).
# TYPE regcred_admissions_total counter
regcred_admissions_total{outcome="failed-open"} 1
regcred_admissions_total{outcome="patched"} 2
# HELP regcred_pull_secrets_written_total Pull secrets created or updated, per registry and operation.
# TYPE regcred_pull_secrets_written_total counter
regcred_pull_secrets_written_total{operation="created",registry="hub"} 1
regcred_pull_secrets_written_total{operation="updated",registry="hub"} 1
# HELP regcred_token_expiry_timestamp_seconds When the first of the current tokens of an expiring-credential registry (ECR; a glob registry has one per region) expires, per registry (Unix time); on the leader only.
# TYPE regcred_token_expiry_timestamp_seconds gauge
regcred_token_expiry_timestamp_seconds{registry="ecr"} 1.8e+09
# HELP regcred_registry_login_ok 1 when the registry's credentials logged in at the last check, 0 when they did not, per registry; on the leader only.
# TYPE regcred_registry_login_ok gauge
regcred_registry_login_ok{registry="hub"} 1
regcred_registry_login_ok{registry="quay"} 0
`), "regcred_admissions_total", "regcred_pull_secrets_written_total", "regcred_token_expiry_timestamp_seconds", "regcred_registry_login_ok"))

	assert.InDelta(t, 1, testutil.ToFloat64(m.injected.WithLabelValues("hub")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.secretsDeleted.WithLabelValues("old")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.reloads.WithLabelValues("success")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.reloads.WithLabelValues("rejected")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.tokenRefreshes.WithLabelValues("ecr")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.tokenErrors.WithLabelValues("ecr")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.checks.WithLabelValues("quay", "failed")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.evictions.WithLabelValues("evicted")), 0)
	assert.InDelta(t, 2, testutil.ToFloat64(m.evictions.WithLabelValues("blocked")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.recoveryEvents.WithLabelValues("PullSecretMissing")), 0)
	assert.InDelta(t, 2, testutil.ToFloat64(m.trustHosts.WithLabelValues("ca")), 0)
	assert.InDelta(t, 0, testutil.ToFloat64(m.trustHosts.WithLabelValues("plain-http")), 0)
	assert.InDelta(t, 1, testutil.ToFloat64(m.trustNotes.WithLabelValues()), 0)
	assert.InDelta(t, 0, testutil.ToFloat64(m.configValid), 0, "the latest change was rejected")
	m.ConfigReload(true)
	assert.InDelta(t, 1, testutil.ToFloat64(m.configValid), 0)
	n, err := testutil.GatherAndCount(reg, "regcred_build_info")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// Two replicas in one process each have their own registry.
func TestMetricsPerRegistry(t *testing.T) {
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	New(a, "v").Injected("x")
	New(b, "v")
	n, err := testutil.GatherAndCount(a, "regcred_secrets_injected_total")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = testutil.GatherAndCount(b, "regcred_secrets_injected_total")
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}

// A registry's expiry and login result go once forgotten (it left the
// config, or the term ended): a frozen sample would keep an alert firing,
// or hide the leader's. Its counters stay.
func TestForgottenRegistriesHaveNoGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v")
	m.TokenRefreshed("ecr", time.Unix(1_800_000_000, 0))
	m.TokenRefreshed("ecr-2", time.Unix(1_800_000_000, 0))
	m.LoginChecked("hub", false)
	m.LoginChecked("quay", true)

	m.TokenExpiryForgotten("ecr")
	m.TokenExpiryForgotten("never-reported")
	m.LoginCheckForgotten("hub")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP regcred_token_expiry_timestamp_seconds When the first of the current tokens of an expiring-credential registry (ECR; a glob registry has one per region) expires, per registry (Unix time); on the leader only.
# TYPE regcred_token_expiry_timestamp_seconds gauge
regcred_token_expiry_timestamp_seconds{registry="ecr-2"} 1.8e+09
# HELP regcred_registry_login_ok 1 when the registry's credentials logged in at the last check, 0 when they did not, per registry; on the leader only.
# TYPE regcred_registry_login_ok gauge
regcred_registry_login_ok{registry="quay"} 1
# HELP regcred_token_refreshes_total Token refreshes of expiring-credential registries (ECR), per registry.
# TYPE regcred_token_refreshes_total counter
regcred_token_refreshes_total{registry="ecr"} 1
regcred_token_refreshes_total{registry="ecr-2"} 1
`), "regcred_token_expiry_timestamp_seconds", "regcred_registry_login_ok", "regcred_token_refreshes_total"))
}
