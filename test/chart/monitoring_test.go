package chart

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/regcred/regcred/pkg/metrics"
)

// regcredMetric finds the names of regcred's metrics in a query.
var regcredMetric = regexp.MustCompile(`\bregcred_[a-z_]+\b`)

// knownMetrics are the names regcred registers, with the suffixes
// Prometheus derives from them.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics.New(reg, "test")
	families, err := reg.Gather()
	require.NoError(t, err)
	known := map[string]bool{}
	for _, f := range families {
		known[f.GetName()] = true
	}
	// Metrics with labels appear once a sample exists; these are the ones
	// regcred registers without a sample yet.
	for _, n := range []string{"regcred_admissions_total", "regcred_secrets_injected_total", "regcred_pull_secrets_written_total",
		"regcred_pull_secrets_deleted_total", "regcred_pull_secrets_restored_total", "regcred_config_reloads_total",
		"regcred_token_expiry_timestamp_seconds", "regcred_token_refreshes_total", "regcred_token_refresh_errors_total",
		"regcred_registry_login_ok", "regcred_registry_login_checks_total", "regcred_recovery_evictions_total", "regcred_recovery_events_total"} {
		known[n] = true
	}
	return known
}

// The alerts and the dashboard query only metrics regcred serves.
func TestMonitoring(t *testing.T) {
	known := knownMetrics(t)
	r := mustRender(t, values{"metrics": values{"prometheusRule": values{"enabled": true}, "grafanaDashboard": values{"enabled": true}}})

	rule := r.find("PrometheusRule", "regcred")
	require.NotNil(t, rule)
	groups, _, err := unstructured.NestedSlice(rule.Object, "spec", "groups")
	require.NoError(t, err)
	require.Len(t, groups, 1)
	rules := groups[0].(map[string]any)["rules"].([]any)
	var alerts []string
	for _, x := range rules {
		rl := x.(map[string]any)
		alerts = append(alerts, rl["alert"].(string))
		expr := rl["expr"].(string)
		for _, m := range regcredMetric.FindAllString(expr, -1) {
			assert.True(t, known[m], "alert %s queries %s, which regcred does not serve", rl["alert"], m)
		}
		if strings.Contains(expr, "apiserver_") {
			// The API server's own metric: scoped by the webhooks' names.
			assert.Contains(t, expr, "pods.regcred.io", rl["alert"])
			continue
		}
		assert.Contains(t, expr, `namespace="regcred"`, "scoped to the release's namespace: %s", rl["alert"])
	}
	assert.Equal(t, []string{"RegcredConfigRejected", "RegcredRegistryLoginFailing", "RegcredTokenNearExpiry", "RegcredAdmissionsFailingOpen", "RegcredUnreachable"}, alerts)

	cm := r.find("ConfigMap", "regcred-dashboard")
	require.NotNil(t, cm)
	assert.Equal(t, "1", cm.GetLabels()["grafana_dashboard"])
	data, _, err := unstructured.NestedString(cm.Object, "data", "regcred.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal([]byte(data), &dash))
	require.NotEmpty(t, dash.Panels)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range regcredMetric.FindAllString(tg.Expr, -1) {
				m = strings.TrimSuffix(m, "_bucket")
				assert.True(t, known[m], "panel %q queries %s, which regcred does not serve", p.Title, m)
			}
		}
	}

	off := mustRender(t, values{})
	assert.Nil(t, off.find("PrometheusRule", "regcred"), "opt-in")
	assert.Nil(t, off.find("ConfigMap", "regcred-dashboard"), "opt-in")
}
