package security

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/test/testbed"
)

// What recovery.enabled adds to regcred's permissions, tried by
// impersonation as the installed chart has them (recovery off), with the
// chart's recovery ClusterRole and binding (rendered from the same values
// with recovery on) added, and after they are removed again.
func TestImpersonationMatrixRecovery(t *testing.T) {
	ctx := t.Context()
	sa := regcredClientset(t)
	app := testbed.NewNamespace(t, env.admin, "recovery-")
	victim := func() *corev1.Pod {
		p := pod(env.image)
		p.Namespace = app
		require.NoError(t, env.admin.Create(ctx, p))
		return p
	}

	// Each check tries one thing recovery needs; refused says whether the
	// API server must refuse it now.
	checks := map[string]func(t *testing.T) error{
		"list Pods in every namespace": func(t *testing.T) error {
			_, err := sa.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
			return err
		},
		"watch Pods in every namespace": func(t *testing.T) error {
			w, err := sa.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		},
		"evict a Pod": func(t *testing.T) error {
			p := victim()
			return recovery.APIEvictor{Client: sa}.Evict(ctx, app, p.Name, p.UID)
		},
		"record an Event on a Pod (events.k8s.io)": func(t *testing.T) error {
			ev, err := sa.EventsV1().Events(app).Create(ctx, podEvent(app), metav1.CreateOptions{})
			if err != nil {
				return err
			}
			_, err = sa.EventsV1().Events(app).Patch(ctx, ev.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"seen":"twice"}}}`), metav1.PatchOptions{})
			return err
		},
	}
	// Never, recovery on or off: what it does not need.
	never := map[string]func(t *testing.T) error{
		"record an Event on a Pod (core: regcred's are events.k8s.io's)": func(t *testing.T) error {
			_, err := sa.CoreV1().Events(app).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{GenerateName: "p-"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: app, Name: "p"},
				Reason:         "PullSecretMissing", Message: "m", Type: corev1.EventTypeWarning,
			}, metav1.CreateOptions{})
			return err
		},
		"get a Pod": func(t *testing.T) error {
			_, err := sa.CoreV1().Pods(app).Get(ctx, victim().Name, metav1.GetOptions{})
			return err
		},
		"delete a Pod": func(t *testing.T) error {
			return sa.CoreV1().Pods(app).Delete(ctx, victim().Name, metav1.DeleteOptions{})
		},
		"patch a Pod": func(t *testing.T) error {
			_, err := sa.CoreV1().Pods(app).Patch(ctx, victim().Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
			return err
		},
		"update a Pod's status": func(t *testing.T) error {
			p := victim()
			_, err := sa.CoreV1().Pods(app).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		},
		"list Secrets": func(t *testing.T) error {
			_, err := sa.CoreV1().Secrets("").List(ctx, metav1.ListOptions{Limit: 1})
			return err
		},
		"delete an Event": func(t *testing.T) error {
			ev, err := clientset(t, nil).EventsV1().Events(app).Create(ctx, podEvent(app), metav1.CreateOptions{})
			require.NoError(t, err)
			return sa.EventsV1().Events(app).Delete(ctx, ev.Name, metav1.DeleteOptions{})
		},
	}
	forbidden := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err), "refused: %v", err)
	}
	tryAll := func(t *testing.T, allowed bool) {
		for name, check := range checks {
			t.Run(name, func(t *testing.T) {
				if allowed {
					// RBAC reaches the authorizer through an informer.
					require.Eventually(t, func() bool { return check(t) == nil }, eventually, tick, "%s allowed", name)
					return
				}
				require.Eventually(t, func() bool { return apierrors.IsForbidden(check(t)) }, eventually, tick, "%s refused", name)
				forbidden(t, check(t))
			})
		}
		for name, check := range never {
			t.Run(name, func(t *testing.T) { forbidden(t, check(t)) })
		}
	}

	t.Run("recovery off: refused", func(t *testing.T) { tryAll(t, false) })

	objs := recoveryRBAC(t)
	for _, o := range objs {
		require.NoError(t, env.admin.Create(ctx, o))
	}
	t.Cleanup(func() {
		for _, o := range objs {
			_ = env.admin.Delete(context.Background(), o)
		}
	})
	t.Run("recovery on: allowed", func(t *testing.T) { tryAll(t, true) })

	// RBAC cannot narrow evictions by namespace; the chart's admission
	// policy keeps them out of the namespaces regcred never serves.
	for _, ns := range []string{"kube-system", regcredNS, excludedNS} {
		t.Run("recovery on: no eviction in "+ns, func(t *testing.T) {
			evict := func() error {
				p := pod(env.image)
				p.Namespace = ns
				if err := env.admin.Create(ctx, p); err != nil {
					return fmt.Errorf("creating the Pod to evict: %w", err)
				}
				t.Cleanup(func() { _ = env.admin.Delete(context.Background(), p) })
				return recovery.APIEvictor{Client: sa}.Evict(ctx, ns, p.Name, p.UID)
			}
			// The policy reaches the API server through an informer; it
			// refuses, as the chart's other policies do, as Invalid.
			refused := func(err error) bool {
				return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'regcred-recovery'")
			}
			require.Eventually(t, func() bool { return refused(evict()) }, eventually, tick)
			err := evict()
			assert.True(t, refused(err), "refused: %v", err)
			assert.True(t, apierrors.IsInvalid(err) || apierrors.IsForbidden(err), "refused: %v", err)
		})
	}

	t.Run("an eviction cannot get around a PodDisruptionBudget", func(t *testing.T) {
		p := pod(env.image)
		p.Namespace, p.Labels = app, map[string]string{"guarded": "yes"}
		require.NoError(t, env.admin.Create(ctx, p))
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		_, err := clientset(t, nil).CoreV1().Pods(app).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "guarded", Namespace: app},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				Selector:       &metav1.LabelSelector{MatchLabels: p.Labels},
			},
		}
		require.NoError(t, env.admin.Create(ctx, pdb))
		// This control plane runs no disruption controller: its status is
		// written here as that controller would, so that the budget, not
		// a budget not processed yet, is what refuses.
		budget := func(allowed int32) {
			t.Helper()
			require.NoError(t, env.admin.Get(ctx, client.ObjectKeyFromObject(pdb), pdb))
			pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: allowed,
				CurrentHealthy: 1, DesiredHealthy: 1 - allowed, ExpectedPods: 1}
			require.NoError(t, env.admin.Status().Update(ctx, pdb))
		}
		budget(0)
		err = recovery.APIEvictor{Client: sa}.Evict(ctx, app, p.Name, p.UID)
		require.Error(t, err)
		assert.True(t, apierrors.IsTooManyRequests(err), "the API server holds the budget: %v", err)
		var status apierrors.APIStatus
		require.ErrorAs(t, err, &status)
		require.NotNil(t, status.Status().Details)
		var causes []string
		for _, c := range status.Status().Details.Causes {
			causes = append(causes, c.Message)
		}
		assert.Contains(t, causes, "The disruption budget guarded needs 1 healthy pods and has 1 currently", "refused by the budget itself")
		assert.NotNil(t, podOf(t, app, p.Name), "the Pod is still there")

		// A budget that allows a disruption lets the same eviction through.
		budget(1)
		require.NoError(t, recovery.APIEvictor{Client: sa}.Evict(ctx, app, p.Name, p.UID))
	})

	for _, o := range objs {
		require.NoError(t, env.admin.Delete(ctx, o))
	}
	t.Run("recovery off again: refused", func(t *testing.T) { tryAll(t, false) })
}

// regcredClientset impersonates regcred's ServiceAccount.
func regcredClientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cfg := rest.CopyConfig(env.cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: saUser, Groups: saGroups}
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return cs
}

func podEvent(ns string) *eventsv1.Event {
	now := metav1.NowMicro()
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: "p-"},
		EventTime:           now,
		ReportingController: "regcred", ReportingInstance: "regcred-0",
		Action: "Evict", Reason: "EvictedForPullSecret", Note: "n", Type: corev1.EventTypeNormal,
		Regarding: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: "p"},
	}
}

// recoveryRBAC renders the chart with the values it was installed with and
// recovery on, and returns what that adds: the recovery ClusterRole and
// its binding, and the admission policy that confines evictions, with its
// binding.
func recoveryRBAC(t *testing.T) []client.Object {
	t.Helper()
	objs := renderOptIn(t, "recovery.enabled=true", named("regcred-recovery"), "rbac.yaml", "admissionpolicy.yaml")
	require.Equal(t, map[string]int{"ClusterRole": 1, "ClusterRoleBinding": 1, "ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1}, kindsOf(objs),
		"the recovery ClusterRole, the eviction policy, and their bindings")
	return objs
}

// podOf reads a Pod as the admin; nil if it does not exist.
func podOf(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := env.admin.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		require.True(t, apierrors.IsNotFound(err), "reading Pod: %v", err)
		return nil
	}
	return &p
}
