package chart

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/metrics"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/pkg/secretstore"
)

// regcredMetric finds the names of regcred's metrics in a query.
var regcredMetric = regexp.MustCompile(`\bregcred_[a-z_]+\b`)

// knownMetrics are the names regcred registers, with the suffixes
// Prometheus derives from them.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "test")
	// A metric with labels shows once it has a sample: give each one.
	m.Admission(admission.Patched)
	m.Injected("r")
	m.SecretEnsured("r", secretstore.Created)
	m.SecretDeleted("r")
	m.SecretRestored("r")
	m.ConfigReload(true)
	m.TokenRefreshed("r", time.Now())
	m.TokenRefreshFailed("r")
	m.LoginChecked("r", true)
	m.WebhookCertificate(time.Now(), time.Now())
	m.Unserved(plan.NoRegistry)
	m.RecoveryEviction(recovery.Evicted)
	m.RecoveryEvent("PullSecretMissing")
	families, err := reg.Gather()
	require.NoError(t, err)
	known := map[string]bool{}
	for _, f := range families {
		known[f.GetName()] = true
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

// With metrics off there is nothing to scrape, alert on or chart: a
// ServiceMonitor, PrometheusRule or dashboard asked for all the same is
// refused, instead of silently left out.
func TestMonitoringNeedsMetrics(t *testing.T) {
	for _, what := range []string{"serviceMonitor", "prometheusRule", "grafanaDashboard"} {
		_, err := render(t, values{"metrics": values{"enabled": false, what: values{"enabled": true}}})
		require.Error(t, err, what)
		assert.Contains(t, err.Error(), "metrics."+what+".enabled")
		assert.Contains(t, err.Error(), "metrics.enabled")
	}
	off := mustRender(t, values{"metrics": values{"enabled": false}})
	assert.Nil(t, off.find("Service", "regcred-metrics"))

	// No labels of the sidecar's (null): the dashboard's ConfigMap has the
	// chart's own.
	r := mustRender(t, values{"metrics": values{"grafanaDashboard": values{"enabled": true, "labels": nil}}})
	cm := r.find("ConfigMap", "regcred-dashboard")
	require.NotNil(t, cm)
	assert.Equal(t, "regcred", cm.GetLabels()["app.kubernetes.io/name"])
	assert.NotContains(t, cm.GetLabels(), "grafana_dashboard")
}
