package chart

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/test/testbed"
)

// exampleRegistry is a registry of type other whose password is in the
// Secret reg-creds of the release namespace.
func exampleRegistry() map[string]any {
	return map[string]any{
		"name":     "example",
		"type":     "other",
		"url":      "reg.example.com",
		"username": map[string]any{"value": "u"},
		"password": map[string]any{"secretKeyRef": map[string]any{"name": "reg-creds", "key": "password"}},
	}
}

// modes are the documented ways to install the chart.
var modes = []struct {
	name   string
	values values
	// configFlag is the config flag the Deployment must get.
	configFlag string
	// certManager and chartConfigMap say whether cert-manager issues the
	// certificate and whether the chart renders the config ConfigMap.
	certManager, chartConfigMap bool
}{
	{"defaults", values{}, "--config-configmap=regcred-config", false, true},
	{"cert-manager", values{"tls": values{"certManager": values{"enabled": true}}}, "--config-configmap=regcred-config", true, true},
	{"cert-manager with own issuer", values{"tls": values{"certManager": values{"enabled": true, "issuerRef": values{"kind": "ClusterIssuer", "name": "corp-pki"}}}}, "--config-configmap=regcred-config", true, true},
	{"registries in values", values{"config": values{"registries": []any{exampleRegistry()}}}, "--config-configmap=regcred-config", false, true},
	{"existing ConfigMap", values{"config": values{"existingConfigMap": "my-config", "key": "registries.yaml"}}, "--config-configmap=my-config", false, false},
	{"existing Secret", values{"config": values{"existingSecret": "my-secret"}}, "--config-secret=my-secret", false, false},
	{"recovery", values{"recovery": values{"enabled": true}}, "--config-configmap=regcred-config", false, true},
}

func TestLint(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, err := helm(t, "lint", "--strict", chartDir, "--namespace", "regcred", "--values", valuesFile(t, m.values))
			require.NoError(t, err)
		})
	}
}

func TestTemplateModes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := mustRender(t, m.values)
			var d appsv1.Deployment
			r.get(t, "Deployment", "regcred", &d)
			args := d.Spec.Template.Spec.Containers[0].Args
			assert.Contains(t, args, m.configFlag)

			opts := parseArgs(t, args)
			assert.Equal(t, 9443, opts.WebhookPort)
			if m.certManager {
				assert.Empty(t, opts.TLSSecret)
				assert.Equal(t, "/tmp/k8s-webhook-server/serving-certs", opts.CertDir)
				require.Len(t, d.Spec.Template.Spec.Volumes, 1, "cert-manager's Secret, mounted")
			} else {
				assert.Equal(t, "regcred-tls", opts.TLSSecret, "regcred keeps its own TLS material")
				assert.Equal(t, []string{"regcred-webhook.regcred.svc", "regcred-webhook.regcred.svc.cluster.local"}, opts.TLSHosts)
				assert.Equal(t, "regcred", opts.MutatingWebhook)
				assert.Equal(t, "regcred-pull-secrets", opts.ValidatingWebhook)
				assert.Empty(t, d.Spec.Template.Spec.Volumes, "nothing mounted")
				assert.NoError(t, opts.Validate())
			}
			assert.True(t, opts.LeaderElect)
			assert.Equal(t, "regcred", opts.LeaderElectID)
			assert.Equal(t, "regcred-status", opts.StatusConfigMap)
			assert.Equal(t, 10*time.Minute, opts.CheckInterval)

			kinds := r.kinds()
			issuers, certs := 0, 0
			if m.certManager {
				issuers, certs = 2, 2
				if m.name == "cert-manager with own issuer" {
					issuers, certs = 0, 1
					cert := r.find("Certificate", "regcred-serving-cert")
					require.NotNil(t, cert)
					ref, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
					assert.Equal(t, map[string]string{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "corp-pki"}, ref)
				}
			}
			assert.Equal(t, issuers, kinds["Issuer"], "Issuers")
			assert.Equal(t, certs, kinds["Certificate"], "Certificates")
			assert.Nil(t, r.find("Secret", "regcred-tls"), "the chart never renders TLS material")
			assert.Equal(t, !m.certManager, r.find("ClusterRole", "regcred-webhook-ca") != nil, "RBAC for the caBundle without cert-manager only")
			assert.Equal(t, !m.certManager, r.find("ValidatingAdmissionPolicy", "regcred-ca") != nil, "its admission policy likewise")
			assert.Equal(t, m.chartConfigMap, r.find("ConfigMap", "regcred-config") != nil, "the chart's ConfigMap only with config from values")
		})
	}
}

// parseArgs parses the container args with the binary's own flags, as
// regcred serve does.
func parseArgs(t *testing.T, args []string) app.Options {
	t.Helper()
	fs := flag.NewFlagSet("regcred serve", flag.ContinueOnError)
	opts := app.DefaultOptions()
	opts.BindFlags(fs)
	var zapOpts zap.Options
	zapOpts.BindFlags(fs)
	require.NoError(t, fs.Parse(args), "the chart's args must be regcred's flags")
	require.Zero(t, fs.NArg())
	return opts
}

func TestTemplateDeployment(t *testing.T) {
	r := mustRender(t, values{"clusterName": "prod-eu", "logLevel": "debug"})
	var d appsv1.Deployment
	r.get(t, "Deployment", "regcred", &d)
	assert.Equal(t, ptr.To[int32](2), d.Spec.Replicas)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	assert.Equal(t, "ghcr.io/regcred/regcred:"+releaseVersion(t), c.Image, "the tag defaults to the appVersion")
	assert.Contains(t, c.Args, "--cluster-name=prod-eu")
	assert.Contains(t, c.Args, "--zap-log-level=debug")
	assert.Contains(t, c.Args, "--metrics-bind-address=:8080")
	assert.Contains(t, c.Args, "--health-probe-bind-address=:8081")

	// The restricted Pod Security profile, as the image's user (65532) or
	// the one the platform assigns.
	require.NotNil(t, pod.SecurityContext)
	assert.Equal(t, ptr.To(true), pod.SecurityContext.RunAsNonRoot)
	assert.Nil(t, pod.SecurityContext.RunAsUser)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type)
	sc := c.SecurityContext
	require.NotNil(t, sc)
	assert.Equal(t, ptr.To(false), sc.AllowPrivilegeEscalation)
	assert.Equal(t, ptr.To(true), sc.ReadOnlyRootFilesystem)
	assert.Equal(t, ptr.To(true), sc.RunAsNonRoot)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)

	// Probes on the binary's health endpoints.
	require.NotNil(t, c.ReadinessProbe)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "health", c.ReadinessProbe.HTTPGet.Port.String())
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	assert.Equal(t, map[string]int32{"webhook": 9443, "metrics": 8080, "health": 8081}, ports)

	// Graceful shutdown: the preStop pause and the drain fit in the grace period.
	opts := parseArgs(t, c.Args)
	require.NotNil(t, c.Lifecycle.PreStop.Sleep)
	budget := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + opts.ShutdownTimeout
	assert.Greater(t, time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second, budget)

	assert.Equal(t, []corev1.EnvVar{
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}, c.Env)
	require.Len(t, pod.TopologySpreadConstraints, 1)
	assert.Equal(t, "kubernetes.io/hostname", pod.TopologySpreadConstraints[0].TopologyKey)
	assert.Equal(t, corev1.ScheduleAnyway, pod.TopologySpreadConstraints[0].WhenUnsatisfiable)
	assert.Empty(t, pod.Volumes, "regcred keeps its TLS material itself: nothing to mount")
	assert.NotNil(t, r.find("PodDisruptionBudget", "regcred"))
	assert.NotNil(t, r.find("Service", "regcred-metrics"))
	assert.Nil(t, r.find("ServiceMonitor", "regcred"), "no ServiceMonitor by default")

	withMonitor := mustRender(t, values{"metrics": values{"serviceMonitor": values{"enabled": true, "interval": "30s"}}})
	assert.NotNil(t, withMonitor.find("ServiceMonitor", "regcred"))
}

func TestTemplateWebhookMatchesTheTestBed(t *testing.T) {
	for _, certManager := range []bool{false, true} {
		r := mustRender(t, values{"tls": values{"certManager": values{"enabled": certManager}}})
		var hook admissionregistrationv1.MutatingWebhookConfiguration
		r.get(t, "MutatingWebhookConfiguration", "regcred", &hook)
		require.Len(t, hook.Webhooks, 1)
		got := hook.Webhooks[0]
		// What the e2e tests register, except how the API server reaches regcred.
		want := testbed.WebhookConfiguration("", nil, "regcred").Webhooks[0]
		want.ClientConfig = admissionregistrationv1.WebhookClientConfig{
			Service:  &admissionregistrationv1.ServiceReference{Namespace: "regcred", Name: "regcred-webhook", Path: ptr.To(app.WebhookPath), Port: ptr.To[int32](443)},
			CABundle: got.ClientConfig.CABundle,
		}
		assert.Equal(t, want, got)
		if certManager {
			assert.Empty(t, got.ClientConfig.CABundle)
			assert.Equal(t, "regcred/regcred-serving-cert", hook.Annotations["cert-manager.io/inject-ca-from"])
			var cert struct {
				Spec struct {
					SecretName string   `json:"secretName"`
					DNSNames   []string `json:"dnsNames"`
				} `json:"spec"`
			}
			data, err := yaml.Marshal(r.find("Certificate", "regcred-serving-cert").Object)
			require.NoError(t, err)
			require.NoError(t, yaml.Unmarshal(data, &cert))
			assert.Equal(t, "regcred-tls", cert.Spec.SecretName)
			assert.Equal(t, []string{"regcred-webhook.regcred.svc", "regcred-webhook.regcred.svc.cluster.local"}, cert.Spec.DNSNames)
		} else {
			assert.Empty(t, got.ClientConfig.CABundle, "regcred sets it: helm template renders the same every time")
			assert.Empty(t, hook.Annotations)
		}
	}

	r := mustRender(t, values{"webhook": values{"timeoutSeconds": 3, "excludeNamespaces": []string{"batch"}}})
	var hook admissionregistrationv1.MutatingWebhookConfiguration
	r.get(t, "MutatingWebhookConfiguration", "regcred", &hook)
	assert.Equal(t, ptr.To[int32](3), hook.Webhooks[0].TimeoutSeconds)
	assert.Equal(t, metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "regcred", "batch"}},
		hook.Webhooks[0].NamespaceSelector.MatchExpressions[0])
}

func TestTemplateConfigFromValues(t *testing.T) {
	r := mustRender(t, values{"config": values{"registries": []any{exampleRegistry()}}})
	var cm corev1.ConfigMap
	r.get(t, "ConfigMap", "regcred-config", &cm)
	// Loaded as regcred loads it (its secretKeyRefs left unread).
	set, err := registries.Load(t.Context(), []byte(cm.Data["config.yaml"]), registries.Options{StoredIn: config.InConfigMap})
	require.NoError(t, err, "the rendered config is one regcred accepts from a ConfigMap")
	require.Len(t, set.Registries, 1)
	assert.Equal(t, "example", set.Registries[0].Name)

	empty := mustRender(t, values{})
	empty.get(t, "ConfigMap", "regcred-config", &cm)
	set, err = registries.Load(t.Context(), []byte(cm.Data["config.yaml"]), registries.Options{StoredIn: config.InConfigMap})
	require.NoError(t, err)
	assert.Empty(t, set.Registries)
}

func TestTemplateRBAC(t *testing.T) {
	r := mustRender(t, values{})
	var cr rbacv1.ClusterRole
	r.get(t, "ClusterRole", "regcred", &cr)
	var secretVerbs []string
	for _, rule := range cr.Rules {
		if slices.Contains(rule.Resources, "secrets") {
			secretVerbs = append(secretVerbs, rule.Verbs...)
		}
	}
	assert.ElementsMatch(t, []string{"create", "patch", "delete"}, secretVerbs, "cluster-wide, regcred writes pull secrets and reads none")
	assert.Nil(t, r.find("ClusterRole", "regcred-admin-secrets"), "reading Secret metadata is opt-in")

	var role rbacv1.Role
	r.get(t, "Role", "regcred", &role)
	assert.Equal(t, "regcred", role.Namespace)
	var names []string
	for _, rule := range role.Rules {
		names = append(names, rule.ResourceNames...)
	}
	want := []string{"regcred-status", "regcred", "regcred-last-good-config", "regcred-tls"}
	for i := range 16 {
		want = append(want, fmt.Sprintf("regcred-index-%x", i))
	}
	assert.ElementsMatch(t, want, names, "updates in its namespace: the status, the lease, the last good config, its TLS material and the index's shards only")
	// Each written only as regcred writes it.
	verbs := map[string][]string{}
	for _, rule := range role.Rules {
		for _, n := range rule.ResourceNames {
			verbs[n] = append(verbs[n], rule.Verbs...)
		}
	}
	assert.Equal(t, []string{"update"}, verbs["regcred-status"], "the status is written whole")
	assert.Equal(t, []string{"update"}, verbs["regcred-last-good-config"], "the last good config is written whole")
	assert.Equal(t, []string{"update", "delete"}, verbs["regcred-tls"], "its TLS material is written whole, or replaced")
	assert.Equal(t, []string{"patch"}, verbs["regcred-index-0"], "the index is patched one key at a time")

	r.get(t, "ClusterRole", "regcred-webhook-ca", &cr)
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{"regcred"}, Verbs: []string{"list", "watch", "patch"}},
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations"}, ResourceNames: []string{"regcred-pull-secrets"}, Verbs: []string{"list", "watch", "patch"}},
	}, cr.Rules, "its own two webhook configurations, by name")

	withCertManager := mustRender(t, values{"tls": values{"certManager": values{"enabled": true}}})
	withCertManager.get(t, "Role", "regcred", &role)
	names = nil
	for _, rule := range role.Rules {
		names = append(names, rule.ResourceNames...)
	}
	assert.NotContains(t, names, "regcred-tls", "cert-manager writes the TLS Secret")
	assert.Nil(t, withCertManager.find("ClusterRole", "regcred-webhook-ca"), "cert-manager's CA injector keeps the caBundle")

	opted := mustRender(t, values{"warnMissingAdminSecrets": true})
	opted.get(t, "ClusterRole", "regcred-admin-secrets", &cr)
	assert.Equal(t, []string{"list", "watch"}, cr.Rules[0].Verbs)
	var d appsv1.Deployment
	opted.get(t, "Deployment", "regcred", &d)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--warn-missing-admin-secrets")
}

// The values an admin sets for production, as cert-manager's and
// external-secrets' charts name them.
func TestTemplateProductionValues(t *testing.T) {
	r := mustRender(t, values{
		"serviceAccount":           values{"create": false, "name": "platform-regcred"},
		"rbac":                     values{"create": false},
		"hostNetwork":              true,
		"webhook":                  values{"port": 10250, "matchConditions": []any{values{"name": "not-batch", "expression": "!has(object.metadata.labels) || !('batch' in object.metadata.labels)"}}},
		"metrics":                  values{"port": 9090},
		"healthPort":               9091,
		"securityContext":          values{"runAsUser": 1000700000, "seccompProfile": nil},
		"containerSecurityContext": values{"readOnlyRootFilesystem": nil},
		"revisionHistoryLimit":     3,
		"strategy":                 values{"type": "Recreate"},
		"readinessProbe":           values{"periodSeconds": 2, "failureThreshold": 5},
		"livenessProbe":            values{"initialDelaySeconds": 30},
		"networkPolicy":            values{"enabled": true, "metricsFrom": []any{values{"namespaceSelector": values{"matchLabels": values{"kubernetes.io/metadata.name": "monitoring"}}}}},
		"config": values{"registries": []any{withSelector(values{"matchExpressions": []any{
			values{"key": "team", "operator": "In", "values": []any{"a", "b"}}, values{"key": "sandbox", "operator": "DoesNotExist"},
		}})}},
	})
	assert.Nil(t, r.find("ServiceAccount", "platform-regcred"), "the admin's own ServiceAccount")
	assert.Nil(t, r.find("ServiceAccount", "regcred"))
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		assert.Zero(t, r.kinds()[kind], "rbac.create=false: no %s", kind)
	}
	var vap admissionregistrationv1.ValidatingAdmissionPolicy
	r.get(t, "ValidatingAdmissionPolicy", "regcred-pull-secrets", &vap)
	assert.Contains(t, vap.Spec.MatchConditions[0].Expression, "system:serviceaccount:regcred:platform-regcred", "the policies confine the ServiceAccount regcred runs as")

	var d appsv1.Deployment
	r.get(t, "Deployment", "regcred", &d)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	assert.Equal(t, "platform-regcred", pod.ServiceAccountName)
	assert.True(t, pod.HostNetwork)
	assert.Equal(t, corev1.DNSClusterFirstWithHostNet, pod.DNSPolicy)
	// Values merge over the defaults; null removes one.
	assert.Equal(t, &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000700000)}, pod.SecurityContext)
	assert.Nil(t, c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.Equal(t, ptr.To[int32](3), d.Spec.RevisionHistoryLimit)
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type)
	assert.Equal(t, int32(2), c.ReadinessProbe.PeriodSeconds)
	assert.Equal(t, int32(5), c.ReadinessProbe.FailureThreshold)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, int32(30), c.LivenessProbe.InitialDelaySeconds)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	assert.Equal(t, map[string]int32{"webhook": 10250, "metrics": 9090, "health": 9091}, ports)
	opts := parseArgs(t, c.Args)
	assert.Equal(t, 10250, opts.WebhookPort)
	assert.Equal(t, ":9090", opts.MetricsAddr)
	assert.Equal(t, ":9091", opts.ProbeAddr)

	var hook admissionregistrationv1.MutatingWebhookConfiguration
	r.get(t, "MutatingWebhookConfiguration", "regcred", &hook)
	require.Len(t, hook.Webhooks[0].MatchConditions, 1)
	assert.Equal(t, "not-batch", hook.Webhooks[0].MatchConditions[0].Name)
	var secretEvents admissionregistrationv1.ValidatingWebhookConfiguration
	r.get(t, "ValidatingWebhookConfiguration", "regcred-pull-secrets", &secretEvents)
	assert.Contains(t, secretEvents.Webhooks[0].MatchConditions[0].Expression, "platform-regcred", "its own writes are not reported to it")

	var np networkingv1.NetworkPolicy
	r.get(t, "NetworkPolicy", "regcred", &np)
	require.Len(t, np.Spec.Ingress, 3)
	assert.Empty(t, np.Spec.Ingress[0].From, "the API server, from wherever it is")
	assert.Equal(t, "monitoring", np.Spec.Ingress[2].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
	assert.Equal(t, []networkingv1.NetworkPolicyEgressRule{{}}, np.Spec.Egress)

	// The default: no fixed UID (OpenShift assigns one), the restricted
	// profile all the same.
	def := mustRender(t, values{})
	def.get(t, "Deployment", "regcred", &d)
	assert.Nil(t, d.Spec.Template.Spec.SecurityContext.RunAsUser)
	assert.Nil(t, def.find("NetworkPolicy", "regcred"), "opt-in")
	assert.False(t, d.Spec.Template.Spec.HostNetwork)

	// extraArgs cannot override the chart's own flags.
	_, err := render(t, values{"extraArgs": []any{"--webhook-port=1"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "extraArgs: --webhook-port is set by the chart; use webhook.port instead")
	_, err = render(t, values{"extraArgs": []any{"--zap-log-level=debug"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "use logLevel instead")
	ok := mustRender(t, values{"extraArgs": []any{"--ecr-token-budget=3s"}})
	ok.get(t, "Deployment", "regcred", &d)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--ecr-token-budget=3s")

	_, err = render(t, values{"serviceAccount": values{"create": false}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "serviceAccount.name")
}

// Recovery's permissions exist only when it is enabled: reading Pods,
// evicting them, Events in every namespace.
func TestTemplateRecovery(t *testing.T) {
	off := mustRender(t, values{})
	assert.Nil(t, off.find("ClusterRole", "regcred-recovery"))
	assert.Nil(t, off.find("ClusterRoleBinding", "regcred-recovery"))
	roles := 0
	for _, obj := range off.objects {
		if obj.GetKind() != "ClusterRole" && obj.GetKind() != "Role" {
			continue
		}
		roles++
		var role rbacv1.ClusterRole
		off.get(t, obj.GetKind(), obj.GetName(), &role)
		for _, rule := range role.Rules {
			assert.NotContains(t, rule.Resources, "pods", "%s %s", obj.GetKind(), obj.GetName())
			assert.NotContains(t, rule.Resources, "pods/eviction", "%s %s", obj.GetKind(), obj.GetName())
		}
	}
	assert.Equal(t, 3, roles, "the ClusterRoles for pull secrets and for the caBundle, and the Role")
	var d appsv1.Deployment
	off.get(t, "Deployment", "regcred", &d)
	assert.False(t, parseArgs(t, d.Spec.Template.Spec.Containers[0].Args).Recovery)

	on := mustRender(t, values{"recovery": values{"enabled": true, "evictionsPerSecond": 0.5}})
	var cr rbacv1.ClusterRole
	on.get(t, "ClusterRole", "regcred-recovery", &cr)
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}, cr.Rules, "no get, delete, update or patch of Pods")
	var vap admissionregistrationv1.ValidatingAdmissionPolicy
	on.get(t, "ValidatingAdmissionPolicy", "regcred-recovery", &vap)
	assert.Equal(t, `!(request.namespace in ["kube-system","regcred"])`, vap.Spec.Validations[0].Expression, "no eviction where regcred never serves")
	assert.NotNil(t, on.find("ValidatingAdmissionPolicyBinding", "regcred-recovery"))
	assert.Nil(t, off.find("ValidatingAdmissionPolicy", "regcred-recovery"), "recovery off: no policy either")
	var b rbacv1.ClusterRoleBinding
	on.get(t, "ClusterRoleBinding", "regcred-recovery", &b)
	assert.Equal(t, "regcred-recovery", b.RoleRef.Name)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "regcred", Namespace: "regcred"}}, b.Subjects)
	on.get(t, "Deployment", "regcred", &d)
	opts := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	assert.True(t, opts.Recovery)
	assert.InDelta(t, 0.5, opts.RecoveryEvictionsPerSecond, 0)
	require.NoError(t, opts.Validate())
}

func TestTemplateExtraVolumes(t *testing.T) {
	r := mustRender(t, values{
		"extraEnv":  []any{map[string]any{"name": "AWS_CA_BUNDLE", "value": "/etc/regcred/ecr/ca.crt"}},
		"extraArgs": []any{"--ecr-endpoint-url=https://ecr.internal"},
		"extraVolumes": []any{map[string]any{
			"name": "ecr-ca", "configMap": map[string]any{"name": "ecr-ca"},
		}},
		"extraVolumeMounts": []any{map[string]any{
			"name": "ecr-ca", "mountPath": "/etc/regcred/ecr", "readOnly": true,
		}},
	})
	var d appsv1.Deployment
	r.get(t, "Deployment", "regcred", &d)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	// regcred keeps its TLS material itself (the default): the extra
	// volumes are the only ones, as given.
	require.Len(t, pod.Volumes, 1)
	assert.Equal(t, corev1.Volume{Name: "ecr-ca", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "ecr-ca"}},
	}}, pod.Volumes[0])
	require.Len(t, c.VolumeMounts, 1)
	assert.Equal(t, corev1.VolumeMount{Name: "ecr-ca", MountPath: "/etc/regcred/ecr", ReadOnly: true}, c.VolumeMounts[0])

	// With cert-manager, the chart's own volume first, then the extra ones.
	withCM := mustRender(t, values{"tls": values{"certManager": values{"enabled": true}},
		"extraVolumes":      []any{map[string]any{"name": "ecr-ca", "configMap": map[string]any{"name": "ecr-ca"}}},
		"extraVolumeMounts": []any{map[string]any{"name": "ecr-ca", "mountPath": "/etc/regcred/ecr", "readOnly": true}},
	})
	withCM.get(t, "Deployment", "regcred", &d)
	require.Len(t, d.Spec.Template.Spec.Volumes, 2)
	assert.Equal(t, "serving-cert", d.Spec.Template.Spec.Volumes[0].Name)
	assert.Equal(t, "ecr-ca", d.Spec.Template.Spec.Volumes[1].Name)
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "AWS_CA_BUNDLE", Value: "/etc/regcred/ecr/ca.crt"})
	assert.Equal(t, "--ecr-endpoint-url=https://ecr.internal", c.Args[len(c.Args)-1])
}

// With hostNetwork every container port (webhook, metrics, health) is a
// port of the node: a surge replica would need a third node with them
// free, and the rollout would wait for it. So by default a replica then
// stops before its replacement starts; a strategy the admin sets is kept.
func TestTemplateHostNetworkStrategy(t *testing.T) {
	strategy := func(v values) appsv1.DeploymentStrategy {
		t.Helper()
		var d appsv1.Deployment
		mustRender(t, v).get(t, "Deployment", "regcred", &d)
		return d.Spec.Strategy
	}
	rolling := func(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
		return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge: &surge, MaxUnavailable: &unavailable,
		}}
	}
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	assert.Equal(t, rolling(one, zero), strategy(values{}), "a new replica is ready before an old one stops")
	assert.Equal(t, rolling(zero, one), strategy(values{"hostNetwork": true}), "hostNetwork: an old replica stops first, freeing its node's ports")
	assert.Equal(t, rolling(one, zero), strategy(values{"hostNetwork": true, "strategy": values{"rollingUpdate": values{"maxSurge": 1, "maxUnavailable": 0}}}),
		"the admin's own strategy is kept (a spare node with the ports free)")
	assert.Equal(t, rolling(zero, intstr.FromString("50%")), strategy(values{"hostNetwork": true, "strategy": values{"rollingUpdate": values{"maxUnavailable": "50%"}}}),
		"what the admin leaves out is the default's")
	assert.Equal(t, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, strategy(values{"hostNetwork": true, "strategy": values{"type": "Recreate"}}))
	// A default that would make both 0, which the API server refuses, is 1.
	assert.Equal(t, rolling(zero, one), strategy(values{"strategy": values{"rollingUpdate": values{"maxSurge": 0}}}), "no surge: a replica stops first")
	assert.Equal(t, rolling(one, zero), strategy(values{"hostNetwork": true, "strategy": values{"rollingUpdate": values{"maxUnavailable": 0}}}), "none unavailable: a replica surges")
}

// Free text in an argument is quoted: YAML would read `prod #2` as
// `prod` and a comment.
func TestTemplateArgsQuoted(t *testing.T) {
	for _, name := range []string{"prod #2", "eu: west", `"quoted"`, "- dash", "{braces}", "true", "*star"} {
		var d appsv1.Deployment
		mustRender(t, values{"clusterName": name}).get(t, "Deployment", "regcred", &d)
		assert.Equal(t, name, parseArgs(t, d.Spec.Template.Spec.Containers[0].Args).ClusterName)
	}
}

// Every object's name and label is one the API server accepts, however
// long nameOverride is; a release name that cannot name a Service is
// refused, with the way out.
func TestTemplateNames(t *testing.T) {
	all := values{
		"nodeTrust":               values{"enabled": true},
		"recovery":                values{"enabled": true},
		"warnMissingAdminSecrets": true,
		"networkPolicy":           values{"enabled": true},
		"metrics":                 values{"serviceMonitor": values{"enabled": true}, "prometheusRule": values{"enabled": true}, "grafanaDashboard": values{"enabled": true}},
	}
	with := func(extra values) values {
		v := values{}
		for k, x := range all {
			v[k] = x
		}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	check := func(t *testing.T, r *rendered) {
		t.Helper()
		require.NotEmpty(t, r.objects)
		for _, o := range r.objects {
			what := o.GetKind() + " " + o.GetName()
			switch o.GetKind() {
			case "Service":
				assert.Empty(t, validation.IsDNS1035Label(o.GetName()), what)
			case "Namespace", "ServiceAccount":
				assert.Empty(t, validation.IsDNS1123Label(o.GetName()), what)
			default:
				assert.Empty(t, validation.IsDNS1123Subdomain(o.GetName()), what)
			}
			for k, v := range o.GetLabels() {
				assert.Empty(t, validation.IsValidLabelValue(v), "%s: label %s", what, k)
			}
			tmpl, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
			for k, v := range tmpl {
				assert.Empty(t, validation.IsValidLabelValue(v), "%s: Pod label %s", what, k)
			}
		}
	}

	check(t, mustRender(t, with(values{"nameOverride": strings.Repeat("n", 52)})))
	check(t, mustRender(t, with(values{"fullnameOverride": "r" + strings.Repeat("-f", 23) + "f"})))
	// Past the schema (helm --skip-schema-validation), the names still fit.
	r, err := renderRelease(t, "regcred", with(values{"nameOverride": strings.Repeat("n", 63)}), "--skip-schema-validation")
	require.NoError(t, err)
	check(t, r)
	var ds appsv1.DaemonSet
	r.get(t, "DaemonSet", "regcred-"+strings.Repeat("n", 40)+"-node-agent", &ds)
	assert.Equal(t, strings.Repeat("n", 52)+"-node-agent", ds.Spec.Template.Labels["app.kubernetes.io/name"], "the name, shortened to leave room for -node-agent")

	for _, release := range []string{"my.regcred", "1st"} {
		_, err := renderRelease(t, release, values{})
		require.Error(t, err, release)
		assert.Contains(t, err.Error(), "fullnameOverride", "the way out")
		assert.Contains(t, err.Error(), release)
		r, err := renderRelease(t, release, with(values{"fullnameOverride": "regcred"}))
		require.NoError(t, err, "with fullnameOverride, %s installs", release)
		check(t, r)
	}
}

// rbac.create=false leaves out every RBAC object the chart would make:
// the comment that says what to grant instead names every template they
// come from.
func TestValuesDocumentRBAC(t *testing.T) {
	out, err := helm(t, "template", "regcred", chartDir, "--kube-version", "1.30.0", "--namespace", "regcred", "--values", valuesFile(t, values{
		"nodeTrust": values{"enabled": true}, "recovery": values{"enabled": true}, "warnMissingAdminSecrets": true,
	}))
	require.NoError(t, err)
	sources := map[string]bool{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var source string
		for _, line := range strings.Split(doc, "\n") {
			if s, ok := strings.CutPrefix(line, "# Source: regcred/"); ok {
				source = s
			}
		}
		objs, err := parseObjects([]byte(doc))
		require.NoError(t, err)
		for _, o := range objs {
			switch o.GetKind() {
			case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
				require.NotEmpty(t, source, "%s %s", o.GetKind(), o.GetName())
				sources[source] = true
			}
		}
	}
	require.NotEmpty(t, sources)

	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(data), "\nrbac:\n")
	require.True(t, ok)
	comment, _, ok := strings.Cut(rest, "create:")
	require.True(t, ok)
	comment = strings.Join(strings.Fields(strings.ReplaceAll(comment, "#", "")), " ")
	for s := range sources {
		assert.Contains(t, comment, s, "rbac.create's comment names what to grant")
	}
}
