package chart

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/nodeagent"
)

// parseAgentArgs parses the node agent's container args with the
// binary's own flags, as regcred node-agent does.
func parseAgentArgs(t *testing.T, args []string) nodeagent.Options {
	t.Helper()
	require.NotEmpty(t, args)
	require.Equal(t, "node-agent", args[0], "the same image, its node-agent command")
	fs := flag.NewFlagSet("regcred node-agent", flag.ContinueOnError)
	opts := nodeagent.DefaultOptions()
	opts.BindFlags(fs)
	var zapOpts zap.Options
	zapOpts.BindFlags(fs)
	require.NoError(t, fs.Parse(args[1:]), "the chart's args must be the agent's flags")
	require.Zero(t, fs.NArg())
	return opts
}

// Off by default: nothing of the node agent is rendered, and regcred
// publishes nothing.
func TestTemplateNodeTrustOff(t *testing.T) {
	r := mustRender(t, values{})
	assert.Zero(t, r.kinds()["DaemonSet"], "no DaemonSet")
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		assert.Nil(t, r.find(kind, "regcred-node-agent"), kind)
	}
	roles := 0
	for _, o := range r.objects {
		var role rbacv1.ClusterRole
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		roles++
		r.get(t, o.GetKind(), o.GetName(), &role)
		for _, rule := range role.Rules {
			assert.NotContains(t, rule.Resources, "nodes", "%s %s", o.GetKind(), o.GetName())
			assert.NotContains(t, rule.ResourceNames, "regcred-node-trust", "%s %s", o.GetKind(), o.GetName())
		}
	}
	assert.NotZero(t, roles, "regcred's own roles were looked at")
	var d appsv1.Deployment
	r.get(t, "Deployment", "regcred", &d)
	assert.Empty(t, parseArgs(t, d.Spec.Template.Spec.Containers[0].Args).NodeTrustConfigMap)
}

func TestTemplateNodeTrust(t *testing.T) {
	r := mustRender(t, values{"nodeTrust": values{"enabled": true}})

	var d appsv1.Deployment
	r.get(t, "Deployment", "regcred", &d)
	assert.Equal(t, "regcred-node-trust", parseArgs(t, d.Spec.Template.Spec.Containers[0].Args).NodeTrustConfigMap, "regcred publishes")
	var role rbacv1.Role
	r.get(t, "Role", "regcred", &role)
	var updatable []string
	for _, rule := range role.Rules {
		if rule.Resources[0] == "configmaps" && len(rule.ResourceNames) > 0 {
			updatable = append(updatable, rule.ResourceNames...)
		}
	}
	assert.Contains(t, updatable, "regcred-node-trust", "regcred may update the ConfigMap it publishes")

	var ds appsv1.DaemonSet
	r.get(t, "DaemonSet", "regcred-node-agent", &ds)
	assert.Equal(t, "regcred", ds.Namespace)
	spec := ds.Spec.Template.Spec
	assert.Equal(t, "regcred-node-agent", spec.ServiceAccountName)

	t.Run("one hostPath: containerd's registry config directory", func(t *testing.T) {
		require.Len(t, spec.Volumes, 1)
		v := spec.Volumes[0]
		require.NotNil(t, v.HostPath)
		assert.Equal(t, "/etc/containerd/certs.d", v.HostPath.Path)
		assert.Equal(t, ptr.To(corev1.HostPathDirectoryOrCreate), v.HostPath.Type)
		require.Len(t, spec.Containers, 1)
		c := spec.Containers[0]
		require.Len(t, c.VolumeMounts, 1)
		assert.Equal(t, "/host/etc/containerd/certs.d", c.VolumeMounts[0].MountPath)
		assert.Nil(t, c.VolumeMounts[0].MountPropagation)
		opts := parseAgentArgs(t, c.Args)
		assert.Equal(t, "/host/etc/containerd/certs.d", opts.CertsDir, "the agent writes where the directory is mounted")
		assert.Equal(t, "regcred", opts.Namespace)
		assert.Equal(t, "regcred-node-trust", opts.ConfigMap)
		require.Len(t, c.Env, 1)
		assert.Equal(t, "spec.nodeName", c.Env[0].ValueFrom.FieldRef.FieldPath, "NODE_NAME: the node it runs on")
		opts.NodeName = "n"
		assert.NoError(t, opts.Validate())
		assert.Equal(t, d.Spec.Template.Spec.Containers[0].Image, c.Image, "regcred's own image")
	})

	t.Run("as little privilege as it can have", func(t *testing.T) {
		assert.False(t, spec.HostNetwork)
		assert.False(t, spec.HostPID)
		assert.False(t, spec.HostIPC)
		psc := spec.SecurityContext
		require.NotNil(t, psc)
		assert.Equal(t, ptr.To[int64](0), psc.RunAsUser, "UID 0: containerd's directory is root's")
		assert.Equal(t, ptr.To(false), psc.RunAsNonRoot)
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
		sc := spec.Containers[0].SecurityContext
		require.NotNil(t, sc)
		assert.Equal(t, ptr.To(false), sc.AllowPrivilegeEscalation)
		assert.Equal(t, ptr.To(false), sc.Privileged)
		assert.Equal(t, ptr.To(true), sc.ReadOnlyRootFilesystem)
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
		assert.Empty(t, sc.Capabilities.Add)
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type)
		// Memory() is never nil: a missing limit reads as zero.
		limit, ok := spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
		require.True(t, ok, "the agent has a memory limit")
		assert.False(t, limit.IsZero())
	})

	t.Run("nothing that selects regcred's Pods selects the agent's", func(t *testing.T) {
		agent := labels.Set(ds.Spec.Template.Labels)
		var svc corev1.Service
		r.get(t, "Service", "regcred-webhook", &svc)
		assert.False(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(agent), "the webhook Service")
		var pdb policyv1.PodDisruptionBudget
		r.get(t, "PodDisruptionBudget", "regcred", &pdb)
		assert.False(t, labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(agent), "the PodDisruptionBudget")
		assert.False(t, labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(agent), "the Deployment")
	})

	t.Run("RBAC: its ConfigMap by name, patch on Nodes", func(t *testing.T) {
		var ar rbacv1.Role
		r.get(t, "Role", "regcred-node-agent", &ar)
		assert.Equal(t, "regcred", ar.Namespace)
		assert.Equal(t, []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"regcred-node-trust"}, Verbs: []string{"list", "watch"}},
		}, ar.Rules, "no Secret, no other ConfigMap")
		var cr rbacv1.ClusterRole
		r.get(t, "ClusterRole", "regcred-node-agent", &cr)
		assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"patch"}}}, cr.Rules,
			"no get, update, delete or status of Nodes")
		agentSA := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "regcred-node-agent", Namespace: "regcred"}}
		var rb rbacv1.RoleBinding
		r.get(t, "RoleBinding", "regcred-node-agent", &rb)
		assert.Equal(t, agentSA, rb.Subjects)
		var crb rbacv1.ClusterRoleBinding
		r.get(t, "ClusterRoleBinding", "regcred-node-agent", &crb)
		assert.Equal(t, agentSA, crb.Subjects)
	})

	t.Run("the policy confines its Node patches", func(t *testing.T) {
		var vap admissionregistrationv1.ValidatingAdmissionPolicy
		r.get(t, "ValidatingAdmissionPolicy", "regcred-node-agent", &vap)
		assert.Equal(t, ptr.To(admissionregistrationv1.Fail), vap.Spec.FailurePolicy)
		assert.Equal(t, `request.userInfo.username == "system:serviceaccount:regcred:regcred-node-agent"`, vap.Spec.MatchConditions[0].Expression)
		var b admissionregistrationv1.ValidatingAdmissionPolicyBinding
		r.get(t, "ValidatingAdmissionPolicyBinding", "regcred-node-agent", &b)
		assert.Equal(t, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, b.Spec.ValidationActions)
	})
}

// The agent in a namespace of its own, and the namespaces for plain
// manifests: regcred's stays restricted, the agent's is privileged
// (hostPath); sharing one makes it privileged.
func TestTemplateNodeTrustNamespaces(t *testing.T) {
	r := mustRender(t, values{"createNamespace": true, "nodeTrust": values{"enabled": true, "namespace": "regcred-node", "hostPath": "/var/lib/rancher/k3s/agent/etc/containerd/certs.d"}})
	var ns corev1.Namespace
	r.get(t, "Namespace", "regcred", &ns)
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])
	r.get(t, "Namespace", "regcred-node", &ns)
	assert.Equal(t, "privileged", ns.Labels["pod-security.kubernetes.io/enforce"])
	var ds appsv1.DaemonSet
	r.get(t, "DaemonSet", "regcred-node-agent", &ds)
	assert.Equal(t, "regcred-node", ds.Namespace)
	assert.Equal(t, "/var/lib/rancher/k3s/agent/etc/containerd/certs.d", ds.Spec.Template.Spec.Volumes[0].HostPath.Path)
	opts := parseAgentArgs(t, ds.Spec.Template.Spec.Containers[0].Args)
	assert.Equal(t, "regcred", opts.Namespace, "it reads the ConfigMap in regcred's namespace")
	var sa corev1.ServiceAccount
	r.get(t, "ServiceAccount", "regcred-node-agent", &sa)
	assert.Equal(t, "regcred-node", sa.Namespace)
	var rb rbacv1.RoleBinding
	r.get(t, "RoleBinding", "regcred-node-agent", &rb)
	assert.Equal(t, "regcred", rb.Namespace)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "regcred-node-agent", Namespace: "regcred-node"}}, rb.Subjects)
	var vap admissionregistrationv1.ValidatingAdmissionPolicy
	r.get(t, "ValidatingAdmissionPolicy", "regcred-node-agent", &vap)
	assert.Contains(t, vap.Spec.MatchConditions[0].Expression, "system:serviceaccount:regcred-node:regcred-node-agent")

	// The agent's namespace is regcred's own as much as the release's:
	// no webhook call, no pull secret, no write there.
	var d appsv1.Deployment
	r.get(t, "Deployment", "regcred", &d)
	serve := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	assert.True(t, serve.Exclusions()["regcred-node"], "regcred skips it")
	var hooks admissionregistrationv1.MutatingWebhookConfiguration
	r.get(t, "MutatingWebhookConfiguration", "regcred", &hooks)
	require.NotEmpty(t, hooks.Webhooks)
	for _, h := range hooks.Webhooks {
		assert.Contains(t, h.NamespaceSelector.MatchExpressions[0].Values, "regcred-node", "webhook %s is not called there", h.Name)
	}
	var told admissionregistrationv1.ValidatingWebhookConfiguration
	r.get(t, "ValidatingWebhookConfiguration", "regcred-pull-secrets", &told)
	require.NotEmpty(t, told.Webhooks)
	for _, h := range told.Webhooks {
		assert.Contains(t, h.NamespaceSelector.MatchExpressions[0].Values, "regcred-node", "webhook %s is not called there", h.Name)
	}
	r.get(t, "ValidatingAdmissionPolicy", "regcred-pull-secrets", &vap)
	assert.Contains(t, vap.Spec.Validations[0].Expression, `"regcred-node"`, "its admission policy forbids writes there")

	// The node's network is the privileged level's only: a restricted
	// namespace would refuse regcred's own Pods.
	mustRender(t, values{"createNamespace": true, "hostNetwork": true}).get(t, "Namespace", "regcred", &ns)
	assert.Equal(t, "privileged", ns.Labels["pod-security.kubernetes.io/enforce"], "hostNetwork")

	shared := mustRender(t, values{"createNamespace": true, "nodeTrust": values{"enabled": true}})
	shared.get(t, "Namespace", "regcred", &ns)
	assert.Equal(t, "privileged", ns.Labels["pod-security.kubernetes.io/enforce"])
	assert.Equal(t, 1, shared.kinds()["Namespace"])

	// rbac.create=false: the admin grants the agent's permissions; the
	// policy is made either way.
	own := mustRender(t, values{"rbac": values{"create": false}, "nodeTrust": values{"enabled": true}})
	assert.Nil(t, own.find("ClusterRole", "regcred-node-agent"))
	assert.Nil(t, own.find("Role", "regcred-node-agent"))
	assert.NotNil(t, own.find("ValidatingAdmissionPolicy", "regcred-node-agent"))
}

func TestSchemaRejectsBadNodeTrust(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values values
		want   []string
	}{
		{"the root", values{"nodeTrust": values{"hostPath": "/"}}, []string{"hostPath"}},
		{"all of /etc", values{"nodeTrust": values{"hostPath": "/etc"}}, []string{"hostPath"}},
		{"a relative path", values{"nodeTrust": values{"hostPath": "etc/containerd/certs.d"}}, []string{"hostPath"}},
		{"a key typo", values{"nodeTrust": values{"enable": true}}, []string{"nodeTrust", "enable"}},
		{"not a namespace", values{"nodeTrust": values{"namespace": "Node Agents"}}, []string{"namespace"}},
		{"not a duration", values{"nodeTrust": values{"resync": "often"}}, []string{"resync"}},
		{"a pull secret that is no name", values{"nodeTrust": values{"imagePullSecrets": []any{values{"name": "Ghcr_Node"}}}}, []string{"imagePullSecrets"}},
		{"a pull secret as a string", values{"nodeTrust": values{"imagePullSecrets": []any{"ghcr-node"}}}, []string{"imagePullSecrets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// The agent runs regcred's image: in the release namespace it pulls it
// with the release's pull secrets; in a namespace of its own (where
// regcred never injects) with nodeTrust.imagePullSecrets, Secrets of that
// namespace.
func TestTemplateNodeTrustImagePullSecrets(t *testing.T) {
	secrets := func(r *rendered, kind, name string) []corev1.LocalObjectReference {
		t.Helper()
		var pod struct {
			Spec struct {
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		}
		o := r.find(kind, name)
		require.NotNil(t, o, "%s %s", kind, name)
		data, err := yaml.Marshal(o.Object)
		require.NoError(t, err)
		require.NoError(t, yaml.Unmarshal(data, &pod))
		return pod.Spec.Template.Spec.ImagePullSecrets
	}
	release := []any{values{"name": "ghcr-regcred"}}
	own := []any{values{"name": "ghcr-node"}}
	want := func(name string) []corev1.LocalObjectReference { return []corev1.LocalObjectReference{{Name: name}} }

	shared := mustRender(t, values{"imagePullSecrets": release, "nodeTrust": values{"enabled": true}})
	assert.Equal(t, want("ghcr-regcred"), secrets(shared, "Deployment", "regcred"))
	assert.Equal(t, want("ghcr-regcred"), secrets(shared, "DaemonSet", "regcred-node-agent"), "the same namespace: the same Secrets")

	sharedOwn := mustRender(t, values{"imagePullSecrets": release, "nodeTrust": values{"enabled": true, "imagePullSecrets": own}})
	assert.Equal(t, want("ghcr-node"), secrets(sharedOwn, "DaemonSet", "regcred-node-agent"), "the agent's own, when set")

	apart := mustRender(t, values{"imagePullSecrets": release, "nodeTrust": values{"enabled": true, "namespace": "regcred-node", "imagePullSecrets": own}})
	assert.Equal(t, want("ghcr-regcred"), secrets(apart, "Deployment", "regcred"))
	assert.Equal(t, want("ghcr-node"), secrets(apart, "DaemonSet", "regcred-node-agent"), "Secrets of the agent's namespace")

	public := mustRender(t, values{"nodeTrust": values{"enabled": true, "namespace": "regcred-node"}})
	assert.Empty(t, secrets(public, "DaemonSet", "regcred-node-agent"), "a public image: none")

	// The release's Secrets are not in the agent's namespace: the agent
	// could not pull regcred's image.
	_, err := render(t, values{"imagePullSecrets": release, "nodeTrust": values{"enabled": true, "namespace": "regcred-node"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nodeTrust.imagePullSecrets")
	assert.Contains(t, err.Error(), "regcred-node")
}
