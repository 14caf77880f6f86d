package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/regcred/regcred/test/testbed"
)

// certManagerVersion is the cert-manager whose CRDs the chart's Issuers
// and Certificates are checked against.
const certManagerVersion = "v1.21.2"

// installCertManagerCRDs installs cert-manager's CRDs from its Go module.
func installCertManagerCRDs(t *testing.T, cp *testbed.ControlPlane) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@"+certManagerVersion)
	cmd.Dir = t.TempDir() // outside this module: go.mod stays as it is
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	_, err = envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(mod.Dir, "deploy", "crds")},
		ErrorIfPathMissing: true,
	})
	require.NoError(t, err)
}

// adminClient is a client with the control plane's admin credentials.
func adminClient(t *testing.T, cp *testbed.ControlPlane) client.Client {
	t.Helper()
	c, err := client.New(cp.Config, client.Options{})
	require.NoError(t, err)
	return c
}

// createNamespace creates a namespace with labels, deleted after the test.
func createNamespace(t *testing.T, c client.Client, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	require.NoError(t, c.Create(t.Context(), ns))
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
}

// install runs helm install (no --wait: there is no kubelet, Pods never
// run) of the release into namespace ns, uninstalled after the test, and
// returns what helm printed.
func install(t *testing.T, cp *testbed.ControlPlane, release, ns string, v values) string {
	t.Helper()
	out, err := helm(t, "install", release, chartDir, "--kubeconfig", cp.Kubeconfig, "--namespace", ns, "--values", valuesFile(t, v))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := helm(t, "uninstall", release, "--kubeconfig", cp.Kubeconfig, "--namespace", ns)
		assert.NoError(t, err)
	})
	return out
}

func TestInstallWithCertManager(t *testing.T) {
	cp := controlPlane(t)
	installCertManagerCRDs(t, cp)
	c := adminClient(t, cp)
	const ns, release = "regcred-cm", "regcred-cm"
	createNamespace(t, c, ns, nil)
	install(t, cp, release, ns, values{
		"tls":     values{"certManager": values{"enabled": true}},
		"metrics": values{"serviceMonitor": values{"enabled": false}},
		"config":  values{"registries": []any{exampleRegistry()}},
	})

	ctx := t.Context()
	for _, kind := range []string{"Issuer", "Certificate"} {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("cert-manager.io/v1")
		list.SetKind(kind + "List")
		require.NoError(t, c.List(ctx, list, client.InNamespace(ns)))
		assert.Len(t, list.Items, 2, "%ss accepted by the API server", kind)
	}
	var hook admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: release}, &hook))
	assert.Equal(t, ns+"/"+release+"-serving-cert", hook.Annotations["cert-manager.io/inject-ca-from"])
	var d appsv1.Deployment
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release}, &d))
	var s corev1.Secret
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release + "-tls"}, &s)), "cert-manager, not the chart, makes the TLS Secret")
}

func TestInstallSelfManagedTLS(t *testing.T) {
	cp := controlPlane(t)
	c := adminClient(t, cp)
	const ns, release = "regcred-gen", "regcred-gen"
	// The namespace enforces the restricted Pod Security profile: the
	// Deployment's Pod template must pass it.
	createNamespace(t, c, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	notes := install(t, cp, release, ns, values{})
	// The notes tell the admin what to check next.
	for _, want := range []string{
		"kubectl -n regcred-gen get pods",
		"kubectl -n regcred-gen logs deploy/regcred-gen",
		"describe configmap regcred-gen-config",
		"reason=ConfigRejected",
		"describe configmap regcred-gen-status",
		"--dry-run=server -o yaml",
		"regcred.io/inject=false",
		"get secret regcred-gen-tls",
	} {
		assert.Contains(t, notes, want)
	}

	// Helm makes no TLS material: regcred does (TestChartWebhookServedAsItsServiceAccount).
	ctx := t.Context()
	var s corev1.Secret
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release + "-tls"}, &s)))
	var hook admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: release}, &hook))
	assert.Empty(t, hook.Webhooks[0].ClientConfig.CABundle)
	assert.NotContains(t, hook.Annotations, "cert-manager.io/inject-ca-from")

	// The API server type-checks the admission policies without a warning.
	for _, name := range []string{release + "-pull-secrets", release + "-own-secrets", release + "-ca", release + "-pull-secrets-ca"} {
		var vap admissionregistrationv1.ValidatingAdmissionPolicy
		require.Eventually(t, func() bool {
			return c.Get(ctx, client.ObjectKey{Name: name}, &vap) == nil && vap.Status.TypeChecking != nil
		}, 30*time.Second, 100*time.Millisecond, "policy %s never type-checked", name)
		assert.Empty(t, vap.Status.TypeChecking.ExpressionWarnings, name)
	}

	// So helm template renders the same every time: GitOps tools that
	// render with it see no change between syncs.
	render := func() string {
		out, err := helm(t, "template", release, chartDir, "--kube-version", "1.30.0", "--namespace", ns)
		require.NoError(t, err)
		return out
	}
	assert.Equal(t, render(), render())

	// An upgrade keeps the caBundle regcred set: helm's three-way merge
	// leaves a field its manifests do not have.
	hook.Webhooks[0].ClientConfig.CABundle = []byte("-----BEGIN CERTIFICATE-----\nset by regcred\n-----END CERTIFICATE-----\n")
	require.NoError(t, c.Update(ctx, &hook))
	_, err := helm(t, "upgrade", release, chartDir, "--kubeconfig", cp.Kubeconfig, "--namespace", ns, "--values", valuesFile(t, values{"logLevel": "debug"}))
	require.NoError(t, err)
	var after admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: release}, &after))
	assert.Equal(t, hook.Webhooks[0].ClientConfig.CABundle, after.Webhooks[0].ClientConfig.CABundle, "helm upgrade keeps the caBundle")

	// No kubelet runs the Deployment; a Pod made from its template shows the
	// API server's Pod Security admission accepts it.
	var d appsv1.Deployment
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release}, &d))
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--zap-log-level=debug")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "template-check", Namespace: ns, Labels: map[string]string{"check": "template"}},
		Spec:       d.Spec.Template.Spec,
	}
	require.NoError(t, c.Create(ctx, pod, client.DryRunAll), "the Pod passes the restricted Pod Security profile")
	pod.Spec.Containers[0].SecurityContext = nil
	err = c.Create(ctx, pod, client.DryRunAll)
	require.Error(t, err, "and without its security context it would not")
	assert.Contains(t, err.Error(), "restricted")
}

// The production values, installed: the API server accepts every object
// they make (the webhook's matchConditions are compiled, the
// NetworkPolicy validated), with the admin's own ServiceAccount and RBAC.
func TestInstallProductionValues(t *testing.T) {
	cp := controlPlane(t)
	c := adminClient(t, cp)
	const ns, release = "regcred-prod", "regcred-prod"
	createNamespace(t, c, ns, nil)
	ctx := t.Context()
	require.NoError(t, c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "platform-regcred"}}))
	install(t, cp, release, ns, values{
		"serviceAccount": values{"create": false, "name": "platform-regcred"},
		"rbac":           values{"create": false},
		"hostNetwork":    true,
		"webhook": values{"port": 10250, "matchConditions": []any{
			values{"name": "not-batch", "expression": "!has(object.metadata.labels) || !('batch' in object.metadata.labels)"},
		}},
		"metrics":              values{"port": 9090},
		"healthPort":           9091,
		"revisionHistoryLimit": 3,
		"strategy":             values{"type": "Recreate"},
		"readinessProbe":       values{"periodSeconds": 2},
		"networkPolicy":        values{"enabled": true, "metricsFrom": []any{values{"namespaceSelector": values{"matchLabels": values{"kubernetes.io/metadata.name": "monitoring"}}}}},
		"config":               values{"registries": []any{withSelector(values{"matchExpressions": []any{values{"key": "team", "operator": "In", "values": []any{"a"}}}})}},
	})
	var hook admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: release}, &hook))
	require.Len(t, hook.Webhooks[0].MatchConditions, 1)
	var d appsv1.Deployment
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release}, &d))
	assert.Equal(t, "platform-regcred", d.Spec.Template.Spec.ServiceAccountName)
	assert.True(t, d.Spec.Template.Spec.HostNetwork)
	var np networkingv1.NetworkPolicy
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release}, &np))
	var sa corev1.ServiceAccount
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "platform-regcred"}, &sa))
	assert.NotContains(t, sa.Labels, "app.kubernetes.io/managed-by", "the admin's ServiceAccount is not the chart's")

	// A condition the API server cannot compile fails the install, instead
	// of a webhook that is never called.
	_, err := helm(t, "install", "bad-condition", chartDir, "--kubeconfig", cp.Kubeconfig, "--namespace", ns,
		"--values", valuesFile(t, values{"fullnameOverride": "bad-condition", "webhook": values{"matchConditions": []any{values{"name": "broken", "expression": "object.metadata.("}}}}))
	t.Cleanup(func() { _, _ = helm(t, "uninstall", "bad-condition", "--kubeconfig", cp.Kubeconfig, "--namespace", ns) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "matchConditions")
}
