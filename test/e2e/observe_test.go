package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/status"
	"github.com/regcred/regcred/test/testbed"
)

// scrape reads regcred's metrics endpoint as Prometheus would.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(env.metricsURL) //nolint:noctx // a test against a local endpoint
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	out := map[string]float64{}
	for name, f := range families {
		if !strings.HasPrefix(name, "regcred_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// The metrics endpoint, scraped after a known run, shows the expected counts.
func TestMetricsCountWhatHappened(t *testing.T) {
	before := scrape(t)
	cs := clientset(t, nil)
	ns := newNamespace(t)
	const pods = 3
	for range pods {
		createPod(t, cs, ns, pod(env.imageA, env.imageB), metav1.CreateOptions{})
	}
	createPod(t, cs, ns, pod("nginx"), metav1.CreateOptions{})
	createPod(t, cs, "kube-system", pod(env.imageA), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	after := scrape(t)
	delta := func(key string) float64 { return after[key] - before[key] }
	assert.Equal(t, float64(pods), delta("regcred_admissions_total{outcome=patched}"))
	assert.Equal(t, float64(1), delta("regcred_admissions_total{outcome=unchanged}"))
	assert.Equal(t, float64(pods), delta("regcred_secrets_injected_total{registry=reg-a}"))
	assert.Equal(t, float64(pods), delta("regcred_secrets_injected_total{registry=reg-b}"))
	assert.Equal(t, float64(1), delta("regcred_pull_secrets_written_total{operation=created,registry=reg-a}"), "one secret per namespace")
	assert.Equal(t, float64(1), delta("regcred_pull_secrets_written_total{operation=created,registry=reg-b}"))
	assert.Zero(t, delta("regcred_admissions_total{outcome=failed-open}"))
	assert.Positive(t, after["regcred_config_reloads_total{result=success}"])
	assert.Equal(t, float64(1), after["regcred_registry_login_ok{registry=reg-a}"], "the periodic login check works")
	t.Logf("regcred metrics after the run: %d series", len(after))
}

// readStatus returns the status report regcred keeps.
func readStatus(t require.TestingT) *status.Report {
	var cm corev1.ConfigMap
	if err := env.client.Get(env.ctx(), client.ObjectKey{Namespace: regcredNamespace, Name: "regcred-status"}, &cm); err != nil {
		return nil
	}
	var rep status.Report
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data[status.Key]), &rep))
	return &rep
}

func registryStatus(rep *status.Report, name string) *status.RegistryReport {
	if rep == nil {
		return nil
	}
	for i := range rep.Registries {
		if rep.Registries[i].Name == name {
			return &rep.Registries[i]
		}
	}
	return nil
}

// The status ConfigMap says, per registry, whether its config is valid and
// how its last login check went; a wrong password shows there (and in the
// metrics) before any Pod fails to pull.
func TestStatusShowsChecksAndProblems(t *testing.T) {
	restoreConfig(t)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rep := readStatus(c)
		a := registryStatus(rep, "reg-a")
		if !assert.NotNil(c, a) || !assert.NotNil(c, a.LastCheck) {
			return
		}
		assert.Equal(c, "e2e", rep.Cluster)
		assert.True(c, a.Valid)
		assert.True(c, a.Injects)
		assert.Equal(c, "ok", a.LastCheck.Result)
		assert.Equal(c, `logged in as "alice" with basic auth`, a.LastCheck.Message)
	}, 30*time.Second, 100*time.Millisecond)

	// A wrong password.
	var creds corev1.Secret
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKey{Namespace: regcredNamespace, Name: credsSecret}, &creds))
	creds.Data["reg-b-wrong"] = []byte("Not-Bobs-Password")
	require.NoError(t, env.client.Update(t.Context(), &creds))
	setConfig(t, config(
		registryConfig("reg-a", env.regA, "alice", "reg-a", ""),
		registryConfig("reg-b", env.regB, "bob", "reg-b-wrong", ""),
	))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		b := registryStatus(readStatus(c), "reg-b")
		if assert.NotNil(c, b) && assert.NotNil(c, b.LastCheck) {
			assert.Equal(c, "failed", b.LastCheck.Result)
			assert.Equal(c, fmt.Sprintf(`credentials of user "bob" rejected: GET https://%s/v2/ with basic auth answered HTTP 401`, env.regB.Host), b.LastCheck.Message)
		}
		v, ok := scrape(t)["regcred_registry_login_ok{registry=reg-b}"]
		assert.True(c, ok, "the series is there (a missing one would read as 0)")
		assert.Equal(c, float64(0), v)
	}, 30*time.Second, 100*time.Millisecond)

	// A rejected change marks the registries it names invalid; the last
	// good config keeps serving.
	writeConfig(t, config(registryConfig("reg-a", env.regA, "alice", "reg-a", "  clusters: {mode: inject-sometimes}\n")))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rep := readStatus(c)
		a := registryStatus(rep, "reg-a")
		if !assert.NotNil(c, a) {
			return
		}
		assert.False(c, a.Valid)
		assert.True(c, a.Serving)
		assert.Equal(c, []string{`clusters.mode: "inject-sometimes" is not one of inject-everywhere-except, inject-only`}, a.Problems)
		assert.Contains(c, rep.Config.LastError, "inject-sometimes")
	}, 30*time.Second, 100*time.Millisecond)

	cm := &corev1.ConfigMap{}
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKey{Namespace: regcredNamespace, Name: "regcred-status"}, cm))
	testbed.NoSecret(t, "the status", cm.Data[status.Key], "Not-Bobs-Password", passwords["alice"])
}
