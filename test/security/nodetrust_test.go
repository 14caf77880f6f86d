package security

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/nodeagent"
)

const (
	// agentUser is the node agent's ServiceAccount as the chart makes it.
	agentUser = "system:serviceaccount:regcred:regcred-node-agent"
	// nodeClaim is where the API server puts the node of a Pod-bound
	// ServiceAccount token.
	nodeClaim = "authentication.kubernetes.io/node-name"
	trustCM   = "regcred-node-trust"
)

// What nodeTrust.enabled lets the node agent do, tried by impersonating
// its ServiceAccount (with the node claim its Pod's token carries): with
// the chart as installed (node trust off) everything is refused; with the
// agent's RBAC and admission policy (rendered from the same values with
// nodeTrust on) it may read its one ConfigMap and change its own Node's
// annotation, and nothing else; removed, refused again.
func TestImpersonationMatrixNodeAgent(t *testing.T) {
	ctx := t.Context()
	const self, other = "sec-node-a", "sec-node-b"
	specs := map[string]corev1.NodeSpec{}
	for _, n := range []string{self, other} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"zone": "a"}, Annotations: map[string]string{"admin": "note"}}}
		require.NoError(t, env.admin.Create(ctx, node))
		t.Cleanup(func() { _ = env.admin.Delete(context.Background(), node) })
		specs[n] = node.Spec // as the API server made it (the not-ready taint)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: trustCM}, Data: map[string]string{"trust.json": `{"format":1,"hosts":[]}`}}
	require.NoError(t, env.admin.Create(ctx, cm))
	t.Cleanup(func() { _ = env.admin.Delete(context.Background(), cm) })

	agent := agentClientset(t, self)
	unbound := agentClientset(t, "")
	patch := func(cs kubernetes.Interface, node, body string) error {
		_, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(body), metav1.PatchOptions{})
		return err
	}
	// A dry run goes through admission, policies included, and changes
	// nothing.
	dryRunPatch := func(cs kubernetes.Interface, node, body string) error {
		_, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(body), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	ownAnnotation := `{"metadata":{"annotations":{"` + nodeagent.Annotation + `":"{\"hosts\":{\"reg:5000\":\"ca\"}}"}}}`
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", trustCM).String()}

	// What the agent needs: allowed with node trust on.
	checks := map[string]func(t *testing.T) error{
		"list its ConfigMap by name": func(t *testing.T) error {
			_, err := agent.CoreV1().ConfigMaps(regcredNS).List(ctx, byName)
			return err
		},
		"watch its ConfigMap by name": func(t *testing.T) error {
			w, err := agent.CoreV1().ConfigMaps(regcredNS).Watch(ctx, byName)
			if err == nil {
				w.Stop()
			}
			return err
		},
		"annotate its own Node": func(t *testing.T) error { return patch(agent, self, ownAnnotation) },
	}
	// Never, on or off: RBAC refuses (403), or the policy does.
	never := map[string]func(t *testing.T) error{
		// It reads its ConfigMap through an informer, by name: never a get.
		"get its ConfigMap": func(t *testing.T) error {
			_, err := agent.CoreV1().ConfigMaps(regcredNS).Get(ctx, trustCM, metav1.GetOptions{})
			return err
		},
		"get another ConfigMap": func(t *testing.T) error {
			_, err := agent.CoreV1().ConfigMaps(regcredNS).Get(ctx, "regcred-config", metav1.GetOptions{})
			return err
		},
		"list every ConfigMap": func(t *testing.T) error {
			_, err := agent.CoreV1().ConfigMaps(regcredNS).List(ctx, metav1.ListOptions{})
			return err
		},
		"update its ConfigMap": func(t *testing.T) error {
			c, err := clientset(t, nil).CoreV1().ConfigMaps(regcredNS).Get(ctx, trustCM, metav1.GetOptions{})
			require.NoError(t, err)
			c.Data["trust.json"] = `{"format":1,"hosts":[{"host":"evil.example.com","skipVerify":true,"registries":["x"]}]}`
			_, err = agent.CoreV1().ConfigMaps(regcredNS).Update(ctx, c, metav1.UpdateOptions{})
			return err
		},
		"get a Secret": func(t *testing.T) error {
			_, err := agent.CoreV1().Secrets(regcredNS).Get(ctx, "reg-creds", metav1.GetOptions{})
			return err
		},
		"list Secrets": func(t *testing.T) error {
			_, err := agent.CoreV1().Secrets("").List(ctx, metav1.ListOptions{Limit: 1})
			return err
		},
		"get its Node": func(t *testing.T) error {
			_, err := agent.CoreV1().Nodes().Get(ctx, self, metav1.GetOptions{})
			return err
		},
		"list Nodes": func(t *testing.T) error {
			_, err := agent.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		},
		"delete its Node": func(t *testing.T) error {
			return agent.CoreV1().Nodes().Delete(ctx, self, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		},
		"create a Node": func(t *testing.T) error {
			_, err := agent.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sec-node-new"}}, metav1.CreateOptions{})
			return err
		},
		"patch its Node's status": func(t *testing.T) error {
			_, err := agent.CoreV1().Nodes().Patch(ctx, self, types.MergePatchType, []byte(`{"status":{"phase":"Terminated"}}`), metav1.PatchOptions{}, "status")
			return err
		},
		"annotate another Node":                           func(t *testing.T) error { return patch(agent, other, ownAnnotation) },
		"annotate its Node with a token bound to no node": func(t *testing.T) error { return patch(unbound, self, ownAnnotation) },
		"label its own Node": func(t *testing.T) error {
			return patch(agent, self, `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}`)
		},
		"remove a label of its own Node": func(t *testing.T) error { return patch(agent, self, `{"metadata":{"labels":{"zone":null}}}`) },
		"set another annotation on its own Node": func(t *testing.T) error {
			return patch(agent, self, `{"metadata":{"annotations":{"node.alpha.kubernetes.io/ttl":"0"}}}`)
		},
		"remove an annotation of its own Node": func(t *testing.T) error {
			return patch(agent, self, `{"metadata":{"annotations":{"admin":null}}}`)
		},
		"taint its own Node": func(t *testing.T) error {
			return patch(agent, self, `{"spec":{"taints":[{"key":"evil","effect":"NoSchedule"}]}}`)
		},
		"cordon its own Node": func(t *testing.T) error { return patch(agent, self, `{"spec":{"unschedulable":true}}`) },
		"add a finalizer to its own Node": func(t *testing.T) error {
			return patch(agent, self, `{"metadata":{"finalizers":["example.com/hold"]}}`)
		},
	}
	refused := func(err error) bool { return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) }
	tryAll := func(t *testing.T, allowed bool) {
		for name, check := range checks {
			t.Run(name, func(t *testing.T) {
				if allowed {
					// RBAC and policies reach the API server through informers.
					require.Eventually(t, func() bool { return check(t) == nil }, eventually, tick, "%s allowed: %v", name, check(t))
					return
				}
				require.Eventually(t, func() bool { return refused(check(t)) }, eventually, tick, "%s refused", name)
			})
		}
		for name, check := range never {
			t.Run(name, func(t *testing.T) {
				err := check(t)
				require.Error(t, err)
				assert.True(t, refused(err), "refused: %v", err)
			})
		}
	}

	t.Run("node trust off: refused", func(t *testing.T) { tryAll(t, false) })

	objs := nodeAgentObjects(t)
	for _, o := range objs {
		require.NoError(t, env.admin.Create(ctx, o), "%s %s", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
	}
	t.Cleanup(func() {
		for _, o := range objs {
			_ = env.admin.Delete(context.Background(), o)
		}
	})
	// The policy takes effect through an informer: wait until it refuses
	// what RBAC alone would let through (in a dry run, so that nothing
	// changes meanwhile).
	require.Eventually(t, func() bool {
		err := dryRunPatch(agent, other, ownAnnotation)
		return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
	}, time.Minute, tick, "the agent's admission policy never took effect")

	t.Run("node trust on: allowed", func(t *testing.T) { tryAll(t, true) })

	t.Run("the policy says why", func(t *testing.T) {
		for body, why := range map[string]string{
			ownAnnotation: "only the Node it runs on",
			`{"metadata":{"annotations":{"admin":"changed"}}}`:                   "only the annotation nodetrust.regcred.io/applied",
			`{"metadata":{"labels":{"zone":"b"}}}`:                               "labels, finalizers or owners",
			`{"spec":{"providerID":"aws:///x"}}`:                                 "spec",
			`{"metadata":{"annotations":{"` + nodeagent.Annotation + `":null}}}`: "",
		} {
			node := self
			if why == "only the Node it runs on" {
				node = other
			}
			err := patch(agent, node, body)
			if why == "" {
				assert.NoError(t, err, "removing its own annotation is allowed")
				continue
			}
			require.Error(t, err, body)
			assert.Contains(t, err.Error(), why, body)
		}
	})

	t.Run("what it patched: its annotation, nothing else", func(t *testing.T) {
		require.NoError(t, patch(agent, self, ownAnnotation))
		var n corev1.Node
		require.NoError(t, env.admin.Get(ctx, client.ObjectKey{Name: self}, &n))
		assert.Equal(t, map[string]string{"admin": "note", nodeagent.Annotation: `{"hosts":{"reg:5000":"ca"}}`}, n.Annotations)
		assert.Equal(t, map[string]string{"zone": "a"}, n.Labels)
		assert.Equal(t, specs[self], n.Spec)
		assert.Empty(t, n.Finalizers)
		require.NoError(t, env.admin.Get(ctx, client.ObjectKey{Name: other}, &n))
		assert.Equal(t, map[string]string{"admin": "note"}, n.Annotations, "nothing on another Node")
		assert.Equal(t, specs[other], n.Spec)
	})

	for _, o := range objs {
		require.NoError(t, env.admin.Delete(ctx, o))
	}
	t.Run("node trust off again: refused", func(t *testing.T) { tryAll(t, false) })
}

// agentClientset impersonates the node agent's ServiceAccount with a
// token bound to a Pod on node (none if empty).
func agentClientset(t *testing.T, node string) *kubernetes.Clientset {
	t.Helper()
	cfg := rest.CopyConfig(env.cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: agentUser,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:regcred", "system:authenticated"},
	}
	if node != "" {
		cfg.Impersonate.Extra = map[string][]string{nodeClaim: {node}}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return cs
}

// nodeAgentObjects renders the chart with the values it was installed
// with and nodeTrust on, and returns what that adds for the agent's
// permissions: its ServiceAccount, RBAC and admission policy. No kubelet
// runs Pods here: the DaemonSet is left out.
func nodeAgentObjects(t *testing.T) []client.Object {
	t.Helper()
	objs := renderOptIn(t, "nodeTrust.enabled=true", func(u *unstructured.Unstructured) bool { return u.GetKind() != "DaemonSet" },
		"nodetrust-rbac.yaml", "nodetrust-policy.yaml", "nodetrust-daemonset.yaml")
	assert.Equal(t, map[string]int{"ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1}, kindsOf(objs))
	return objs
}
