package chart

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/test/testbed"
)

const (
	// releaseNS and release are where the chart is installed for the
	// webhook test; the ServiceAccount, Lease and webhook are named release.
	releaseNS, release = "regcred", "regcred"
	pullSecret         = "regcred-example"
	eventually         = 30 * time.Second
	tick               = 50 * time.Millisecond
)

// TestChartWebhookServedAsItsServiceAccount installs the chart, points the
// chart's own MutatingWebhookConfiguration (only its clientConfig changed)
// at a regcred running in this process with the Deployment's args and
// acting as the chart's ServiceAccount, and shows that the webhook sees
// exactly the Pods it should, and that the chart's RBAC lets regcred do its
// whole job and no more. The subtests run in order, each on the state the
// previous left.
func TestChartWebhookServedAsItsServiceAccount(t *testing.T) {
	cp := controlPlane(t)
	c := adminClient(t, cp)
	ctx := t.Context()
	createNamespace(t, c, releaseNS, nil)
	require.NoError(t, c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "reg-creds", Namespace: releaseNS},
		StringData: map[string]string{"password": "p1"},
	}))
	install(t, cp, release, releaseNS, values{
		"clusterName":   "chart-test",
		"checkInterval": "0", // reg.example.com is not reachable
		"config":        values{"registries": []any{exampleRegistry()}},
	})

	a, url := startAsServiceAccount(t, cp)
	hook := retarget(t, c, url)
	assert.Equal(t, "pods.regcred.io", hook.Webhooks[0].Name)

	t.Run("regcred makes its TLS material and sets the caBundle", func(t *testing.T) {
		var s corev1.Secret
		require.Eventually(t, func() bool {
			return c.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: release + "-tls"}, &s) == nil
		}, eventually, tick, "regcred never made its TLS Secret")
		assert.Equal(t, corev1.SecretTypeTLS, s.Type)
		for _, k := range []string{"tls.crt", "tls.key", "ca.crt", "ca.key"} {
			assert.NotEmpty(t, s.Data[k], k)
		}
		require.Eventually(t, func() bool {
			var m admissionregistrationv1.MutatingWebhookConfiguration
			var v admissionregistrationv1.ValidatingWebhookConfiguration
			return c.Get(ctx, client.ObjectKey{Name: release}, &m) == nil && bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, s.Data["ca.crt"]) &&
				c.Get(ctx, client.ObjectKey{Name: release + "-pull-secrets"}, &v) == nil && bytes.Equal(v.Webhooks[0].ClientConfig.CABundle, s.Data["ca.crt"])
		}, eventually, tick, "the caBundle of both webhook configurations is regcred's CA")
	})

	apps := "apps"
	createNamespace(t, c, apps, nil)
	optedOut := "opted-out"
	createNamespace(t, c, optedOut, map[string]string{"regcred.io/inject": "false"})
	cs, err := kubernetes.NewForConfig(cp.Config)
	require.NoError(t, err)

	t.Run("a Pod in a normal namespace gets its pull secret", func(t *testing.T) {
		// The API server picks the changed webhook configuration up shortly.
		var p *corev1.Pod
		require.Eventually(t, func() bool {
			p = createPod(t, cs, apps, nil)
			return len(p.Spec.ImagePullSecrets) > 0
		}, eventually, 200*time.Millisecond, "the chart's webhook never injected")
		assert.Equal(t, []corev1.LocalObjectReference{{Name: pullSecret}}, p.Spec.ImagePullSecrets)
		s, err := cs.CoreV1().Secrets(apps).Get(ctx, pullSecret, metav1.GetOptions{})
		require.NoError(t, err, "regcred created the pull secret as its ServiceAccount")
		assert.Equal(t, corev1.SecretTypeDockerConfigJson, s.Type)
		assert.Contains(t, string(s.Data[corev1.DockerConfigJsonKey]), base64.StdEncoding.EncodeToString([]byte("u:p1")))
	})

	t.Run("the webhook is not called for left-out Pods", func(t *testing.T) {
		for _, tc := range []struct {
			name, namespace string
			labels          map[string]string
		}{
			{"kube-system", "kube-system", nil},
			{"regcred's namespace", releaseNS, nil},
			{"a namespace labelled regcred.io/inject=false", optedOut, nil},
			{"a Pod labelled regcred.io/inject=false", apps, map[string]string{"regcred.io/inject": "false"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := webhookRequests(t)
				p := createPod(t, cs, tc.namespace, tc.labels)
				assert.Empty(t, p.Spec.ImagePullSecrets)
				assert.NotContains(t, p.Annotations, "regcred.io/injected")
				assert.Equal(t, before, webhookRequests(t), "the API server did not call regcred")
			})
		}
		before := webhookRequests(t)
		createPod(t, cs, apps, nil)
		assert.Greater(t, webhookRequests(t), before, "but it does for a normal Pod")
	})

	select {
	case <-a.Elected():
	case <-time.After(eventually):
		t.Fatal("regcred never took the leader-election Lease")
	}

	t.Run("it holds its Lease", func(t *testing.T) {
		lease, err := cs.CoordinationV1().Leases(releaseNS).Get(ctx, release, metav1.GetOptions{})
		require.NoError(t, err)
		assert.NotEmpty(t, lease.Spec.HolderIdentity)
	})

	t.Run("it updates the pull secret when the credentials change", func(t *testing.T) {
		s, err := cs.CoreV1().Secrets(releaseNS).Get(ctx, "reg-creds", metav1.GetOptions{})
		require.NoError(t, err)
		s.Data = map[string][]byte{"password": []byte("p2")}
		_, err = cs.CoreV1().Secrets(releaseNS).Update(ctx, s, metav1.UpdateOptions{})
		require.NoError(t, err)
		want := base64.StdEncoding.EncodeToString([]byte("u:p2"))
		assert.Eventually(t, func() bool {
			s, err := cs.CoreV1().Secrets(apps).Get(ctx, pullSecret, metav1.GetOptions{})
			return err == nil && containsString(s.Data[corev1.DockerConfigJsonKey], want)
		}, eventually, tick)
	})

	t.Run("it writes its status ConfigMap", func(t *testing.T) {
		assert.Eventually(t, func() bool {
			cm, err := cs.CoreV1().ConfigMaps(releaseNS).Get(ctx, "regcred-status", metav1.GetOptions{})
			return err == nil && strings.Contains(cm.Data["status.yaml"], "cluster: chart-test")
		}, eventually, tick, "with this cluster's report")
	})

	t.Run("it records a ConfigRejected Event on a bad config", func(t *testing.T) {
		setConfig(t, cs, "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n- {name: bad, type: nope, url: x}\n")
		assert.Eventually(t, func() bool {
			events, err := cs.EventsV1().Events(releaseNS).List(ctx, metav1.ListOptions{})
			return err == nil && hasEvent(events.Items, "ConfigRejected", release+"-config")
		}, eventually, tick)
	})

	t.Run("it deletes the pull secrets of a removed registry", func(t *testing.T) {
		setConfig(t, cs, "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries: []\n")
		assert.Eventually(t, func() bool {
			_, err := cs.CoreV1().Secrets(apps).Get(ctx, pullSecret, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, eventually, tick)
	})

	t.Run("a caBundle wiped by someone else is set again", func(t *testing.T) {
		var m admissionregistrationv1.MutatingWebhookConfiguration
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: release}, &m))
		want := m.Webhooks[0].ClientConfig.CABundle
		require.NotEmpty(t, want)
		m.Webhooks[0].ClientConfig.CABundle = nil
		require.NoError(t, c.Update(ctx, &m))
		assert.Eventually(t, func() bool {
			return c.Get(ctx, client.ObjectKey{Name: release}, &m) == nil && bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, want)
		}, eventually, tick)
	})

	t.Run("it may change only the caBundle of its own webhook configurations", func(t *testing.T) {
		sa, err := kubernetes.NewForConfig(impersonate(cp.Config))
		require.NoError(t, err)
		// Dry runs: admission, policies included, runs as for a real
		// write, and a write the policy failed to refuse changes nothing.
		dryRun := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
		patch := func(kind, name, body string) error {
			if kind == "mutating" {
				_, err := sa.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, name, types.JSONPatchType, []byte(body), dryRun)
				return err
			}
			_, err := sa.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, name, types.JSONPatchType, []byte(body), dryRun)
			return err
		}
		// The API server enforces a new policy within a second or so of
		// its creation (helm install, just before).
		require.Eventually(t, func() bool {
			return patch("mutating", release, `[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]`) != nil
		}, eventually, tick, "the policy never took effect")
		var m admissionregistrationv1.MutatingWebhookConfiguration
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: release}, &m))
		bundle, err := json.Marshal(m.Webhooks[0].ClientConfig.CABundle)
		require.NoError(t, err)
		assert.NoError(t, patch("mutating", release, `[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":`+string(bundle)+`}]`), "the caBundle: allowed")
		for name, body := range map[string]string{
			"its failure policy":     `[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]`,
			"its rules":              `[{"op":"replace","path":"/webhooks/0/rules/0/operations","value":["CREATE","UPDATE"]}]`,
			"its namespace selector": `[{"op":"remove","path":"/webhooks/0/namespaceSelector/matchExpressions/0"}]`,
			"where it calls":         `[{"op":"replace","path":"/webhooks/0/clientConfig/url","value":"https://127.0.0.1:1/elsewhere"}]`,
			"its labels":             `[{"op":"add","path":"/metadata/labels/x","value":"y"}]`,
			"a webhook more":         `[{"op":"add","path":"/webhooks/-","value":` + mustJSON(t, m.Webhooks[0]) + `}]`,
		} {
			err := patch("mutating", release, strings.Replace(body, `"name":"pods.regcred.io"`, `"name":"more.regcred.io"`, 1))
			require.Error(t, err, name)
			assert.True(t, apierrors.IsInvalid(err) || apierrors.IsForbidden(err), "%s: %v", name, err)
			assert.Contains(t, err.Error(), "regcred change", name)
		}
		err = patch("validating", release+"-pull-secrets", `[{"op":"replace","path":"/webhooks/0/timeoutSeconds","value":30}]`)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "only the caBundle")

		require.NoError(t, c.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}}))
		t.Cleanup(func() {
			_ = c.Delete(context.Background(), &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}})
		})
		err = patch("mutating", "someone-elses", `[{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]`)
		assert.True(t, apierrors.IsForbidden(err), "another webhook configuration: %v", err)
		_, err = sa.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		assert.True(t, apierrors.IsForbidden(err), "listing them all: %v", err)
		err = sa.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, release, metav1.DeleteOptions{})
		assert.True(t, apierrors.IsForbidden(err), "deleting its own: %v", err)
	})

	t.Run("its ServiceAccount may do nothing more", func(t *testing.T) {
		require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "not-regcreds", Namespace: apps}}))
		sa, err := kubernetes.NewForConfig(impersonate(cp.Config))
		require.NoError(t, err)
		for name, call := range map[string]func() error{
			"get a Secret in another namespace": func() error {
				_, err := sa.CoreV1().Secrets(apps).Get(ctx, "not-regcreds", metav1.GetOptions{})
				return err
			},
			"get a Secret in default": func() error {
				_, err := sa.CoreV1().Secrets(metav1.NamespaceDefault).Get(ctx, "anything", metav1.GetOptions{})
				return err
			},
			"list ConfigMaps in another namespace": func() error {
				_, err := sa.CoreV1().ConfigMaps(apps).List(ctx, metav1.ListOptions{})
				return err
			},
			"change its own config": func() error {
				cm, err := sa.CoreV1().ConfigMaps(releaseNS).Get(ctx, release+"-config", metav1.GetOptions{})
				if err != nil {
					return err
				}
				_, err = sa.CoreV1().ConfigMaps(releaseNS).Update(ctx, cm, metav1.UpdateOptions{})
				return err
			},
			"take another Lease": func() error {
				_, err := sa.CoordinationV1().Leases(releaseNS).Get(ctx, "other", metav1.GetOptions{})
				return err
			},
			"change a Deployment": func() error {
				_, err := sa.AppsV1().Deployments(releaseNS).Update(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: release}}, metav1.UpdateOptions{})
				return err
			},
		} {
			err := call()
			assert.True(t, apierrors.IsForbidden(err), "%s: want forbidden, got %v", name, err)
		}
	})
}

// impersonate returns a copy of cfg acting as the chart's ServiceAccount.
func impersonate(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", releaseNS, release)}
	return c
}

// startAsServiceAccount runs regcred in this process with the installed
// Deployment's args, as the chart's ServiceAccount, serving TLS on a
// loopback port; it returns the replica and its webhook URL.
func startAsServiceAccount(t *testing.T, cp *testbed.ControlPlane) (*app.App, string) {
	t.Helper()
	ctx := t.Context()
	var d appsv1.Deployment
	require.NoError(t, adminClient(t, cp).Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: release}, &d))
	opts := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	// What the cluster would give the Pod: its namespace (POD_NAMESPACE)
	// and the certificate; the ports are local.
	opts.Namespace = releaseNS
	// regcred makes its own TLS material (tls.selfManaged): here the API
	// server calls it at a loopback address, not the Service's names.
	require.NotEmpty(t, opts.TLSSecret, "the chart's default: regcred keeps its TLS material")
	opts.TLSHosts = append(opts.TLSHosts, "127.0.0.1")
	port, err := testbed.FreePort()
	require.NoError(t, err)
	opts.WebhookHost, opts.WebhookPort = "127.0.0.1", port
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.ShutdownTimeout = 5 * time.Second

	out := io.Discard
	if os.Getenv("REGCRED_CHART_LOG") != "" {
		out = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(out), zap.UseDevMode(true)))
	a, err := app.New(opts, impersonate(cp.Config), app.Deps{})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.Start(runCtx) }()
	t.Cleanup(func() {
		stop()
		assert.NoError(t, <-done, "regcred stopped with an error")
	})
	require.Eventually(t, func() bool { return a.ConfigStatus().Attempted }, eventually, tick, "regcred never read its config")
	require.NoError(t, a.ConfigStatus().LastError, "regcred rejected the chart's config")
	return a, fmt.Sprintf("https://127.0.0.1:%d%s", port, app.WebhookPath)
}

// retarget points the installed webhook configuration at url, and checks
// nothing else changed. regcred sets the caBundle.
func retarget(t *testing.T, c client.Client, url string) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	var hook admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Name: release}, &hook))
	require.Len(t, hook.Webhooks, 1)
	want := hook.Webhooks[0].DeepCopy()
	hook.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	want.ClientConfig = hook.Webhooks[0].ClientConfig
	require.NoError(t, c.Update(t.Context(), &hook))
	assert.Equal(t, *want, hook.Webhooks[0], "only the clientConfig changed")
	return &hook
}

// createPod creates a Pod whose image is on the test registry.
func createPod(t *testing.T, cs *kubernetes.Clientset, namespace string, labels map[string]string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "reg.example.com/team/app:v1"}}},
	}
	out, err := cs.CoreV1().Pods(namespace).Create(t.Context(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

// webhookRequests counts the admission requests regcred's webhook server
// received (controller-runtime's own metric).
func webhookRequests(t *testing.T) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	require.NoError(t, err)
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "webhook" && l.GetValue() == app.WebhookPath {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// setConfig writes the chart's config ConfigMap, as an admin would.
func setConfig(t *testing.T, cs *kubernetes.Clientset, yaml string) {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(releaseNS).Get(t.Context(), release+"-config", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data = map[string]string{"config.yaml": yaml}
	_, err = cs.CoreV1().ConfigMaps(releaseNS).Update(t.Context(), cm, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func hasEvent(events []eventsv1.Event, reason, regarding string) bool {
	for _, e := range events {
		if e.Reason == reason && e.Regarding.Name == regarding {
			return true
		}
	}
	return false
}

func containsString(data []byte, s string) bool { return strings.Contains(string(data), s) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
