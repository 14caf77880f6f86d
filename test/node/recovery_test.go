package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/test/testbed"
)

const (
	// regcredNamespace is the in-process regcred's: not the namespace
	// TestRegcredOnTheNode installs the chart into, which it creates.
	regcredNamespace = "regcred-recovery"
	regcredConfig    = "regcred-config"
	noRegistries     = "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries: []\n"
)

// Workloads created before their registry is configured, on a real node:
// the kubelet really fails to pull (401) and really pulls once regcred
// has recovered the Pod. A Deployment's Pod is made again with the
// secret and runs (the time it took is logged, not asserted; a minute is
// only how long the test waits); a bare Pod gets
// an Event and is left alone; a PodDisruptionBudget that forbids the
// eviction holds.
func TestRecoveryOnANode(t *testing.T) {
	b := getBed(t)
	logs := &testbed.LogBuffer{}
	log := zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-1)))
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	t.Cleanup(func() { testbed.NoSecret(t, "regcred's log", logs.String(), password) })
	r := b.startRegcred(t)
	ns := b.namespace(t)
	ctx := t.Context()

	// A Deployment and a bare Pod: admitted with no secret, their pulls
	// refused. The Deployment's Pods pull whatever the node has cached.
	web := b.deployment(t, ns, "web", func(s *corev1.PodSpec) { s.Containers[0].ImagePullPolicy = corev1.PullAlways })
	bare := b.createPod(t, ns, "bare", corev1.PullIfNotPresent)
	// A Deployment whose Pod ran with a hand-made pull secret, deleted
	// since: its container restarts (its liveness probe fails) and cannot
	// pull again. It is Running, so its PodDisruptionBudget holds (a
	// budget cannot hold a Pending Pod: the API server evicts those).
	handMade := b.pullSecret(t, ns, "hand-made", password)
	guarded := b.deployment(t, ns, "guarded", func(s *corev1.PodSpec) {
		s.ImagePullSecrets = []corev1.LocalObjectReference{{Name: handMade}}
		s.Containers[0].ImagePullPolicy = corev1.PullAlways
		s.Containers[0].LivenessProbe = &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
			InitialDelaySeconds: 5, PeriodSeconds: 2, FailureThreshold: 1,
		}
	})
	_, err := b.cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	const noCredentials = "authorization failed: no basic auth credentials"
	b.requirePullRefused(t, ns, web.Name, noCredentials)
	b.requirePullRefused(t, ns, bare.Name, noCredentials)
	b.waitPod(t, ns, guarded.Name, 2*time.Minute, running)
	require.NoError(t, b.cs.CoreV1().Secrets(ns).Delete(ctx, handMade, metav1.DeleteOptions{}))
	p := b.waitPod(t, ns, guarded.Name, 2*time.Minute, func(p *corev1.Pod) bool {
		return pullFailed(p) && p.Status.Phase == corev1.PodRunning && p.Status.ContainerStatuses[0].LastTerminationState.Terminated != nil
	})
	t.Logf("Pod %s: restarted and cannot pull again: %s, phase %s", p.Name, p.Status.ContainerStatuses[0].State.Waiting.Reason, p.Status.Phase)

	start := time.Now()
	r.setConfig(t, b.registryConfig())

	t.Run("the Deployment's Pod runs again, with the secret", func(t *testing.T) {
		var made *corev1.Pod
		require.Eventually(t, func() bool {
			for _, p := range b.podsOf(t, ns, "web") {
				if p.UID != web.UID && running(&p) {
					made = &p
					return true
				}
			}
			return false
		}, time.Minute, 50*time.Millisecond, "no Pod of the Deployment made again with the secret ran")
		t.Logf("Deployment's Pod Running %s after the config change (evicted, made again, admitted with the secret, image pulled from the registry with it)", since(start))
		assert.Contains(t, made.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: "regcred-reg"})
		b.requireEvent(t, ns, web, recovery.EventEvicted)
	})

	t.Run("the bare Pod gets an Event and is left alone", func(t *testing.T) {
		ev := b.requireEvent(t, ns, bare, recovery.EventMissing)
		assert.Contains(t, ev.Note, `pull secret "regcred-reg"`)
		p := b.waitPod(t, ns, bare.Name, time.Second, func(*corev1.Pod) bool { return true })
		assert.Equal(t, bare.UID, p.UID)
		assert.Nil(t, p.DeletionTimestamp)
	})

	t.Run("the PodDisruptionBudget holds", func(t *testing.T) {
		ev := b.requireEvent(t, ns, guarded, recovery.EventBlocked)
		assert.Contains(t, ev.Note, "guarded")
		p := b.waitPod(t, ns, guarded.Name, time.Second, func(*corev1.Pod) bool { return true })
		assert.Equal(t, guarded.UID, p.UID)
		assert.Nil(t, p.DeletionTimestamp)
	})
}

// nodeRegcred is regcred running in this process, registered with the
// node's API server.
type nodeRegcred struct {
	*testbed.Regcred
	b *bed
}

// startRegcred starts regcred with recovery on and no registry, as an
// all-powerful ServiceAccount (least privilege is test/security's), and
// unregisters it when the test ends.
func (b *bed) startRegcred(t *testing.T) *nodeRegcred {
	t.Helper()
	ctx := context.Background()
	_, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: regcredNamespace}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	for _, o := range []func() error{
		func() error {
			_, err := b.cs.CoreV1().Secrets(regcredNamespace).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "reg-creds"}, StringData: map[string]string{"password": password},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := b.cs.CoreV1().ConfigMaps(regcredNamespace).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: regcredConfig}, Data: map[string]string{"config.yaml": noRegistries},
			}, metav1.CreateOptions{})
			return err
		},
	} {
		if err := o(); !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err)
		}
	}
	self, err := testbed.ServiceAccount(ctx, b.c, b.cp.Config, regcredNamespace, "regcred", "cluster-admin")
	require.NoError(t, err)
	opts := app.DefaultOptions()
	opts.Namespace, opts.ConfigMap, opts.ClusterName = regcredNamespace, regcredConfig, "node"
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.ShutdownTimeout = 5 * time.Second
	opts.Recovery = true
	runCtx, cancel := context.WithCancel(ctx)
	reg, err := testbed.StartRegcred(runCtx, self, b.ca, opts, app.Deps{})
	require.NoError(t, err)
	r := &nodeRegcred{Regcred: reg, b: b}
	t.Cleanup(func() {
		// Other tests run Pods without regcred.
		r.setConfig(t, noRegistries)
		hooks := b.cs.AdmissionregistrationV1()
		assert.NoError(t, hooks.MutatingWebhookConfigurations().Delete(ctx, "regcred", metav1.DeleteOptions{}))
		assert.NoError(t, hooks.ValidatingWebhookConfigurations().Delete(ctx, "regcred-pull-secrets", metav1.DeleteOptions{}))
		cancel()
		r.Wait()
		// Nothing of it is left for the tests that count what regcred
		// leaves behind: its last good config (a Secret labelled as
		// regcred's) goes now, its namespace with the rest.
		if err := b.cs.CoreV1().Secrets(regcredNamespace).Delete(ctx, app.DefaultOptions().LastGoodSecret, metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
			assert.NoError(t, err)
		}
		assert.NoError(t, b.cs.CoreV1().Namespaces().Delete(ctx, regcredNamespace, metav1.DeleteOptions{}))
	})
	select {
	case <-reg.App.Elected():
	case <-time.After(time.Minute):
		require.FailNow(t, "regcred did not become the leader")
	}
	return r
}

// setConfig stores a config and waits until regcred serves it.
func (r *nodeRegcred) setConfig(t *testing.T, yaml string) {
	t.Helper()
	ctx := context.Background()
	cms := r.b.cs.CoreV1().ConfigMaps(regcredNamespace)
	cm, err := cms.Get(ctx, regcredConfig, metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data = map[string]string{"config.yaml": yaml}
	cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	// The last look's status is what a failure reports.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := r.App.ConfigStatus()
		assert.Equal(c, cm.ResourceVersion, s.Version, "the config version serving")
		assert.NoError(c, s.LastError)
	}, time.Minute, 20*time.Millisecond, "regcred did not load config version %s", cm.ResourceVersion)
}

// registryConfig declares the bed's registry as "reg".
func (b *bed) registryConfig() string {
	return testbed.Config(testbed.RegistryWithCA("reg", b.reg.Host, b.ca.CertPEM, user, "reg-creds", "password"))
}

// deployment creates a Deployment of one replica of the bed's image,
// labelled app=name, and returns its Pod once it exists.
func (b *bed) deployment(t *testing.T, ns, name string, tune func(*corev1.PodSpec)) *corev1.Pod {
	t.Helper()
	labels := map[string]string{"app": name}
	spec := corev1.PodSpec{
		Containers:                    []corev1.Container{{Name: "sleeper", Image: b.image, ImagePullPolicy: corev1.PullIfNotPresent}},
		TerminationGracePeriodSeconds: ptr.To[int64](5),
	}
	if tune != nil {
		tune(&spec)
	}
	_, err := b.cs.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var pod *corev1.Pod
	require.Eventually(t, func() bool {
		if pods := b.podsOf(t, ns, name); len(pods) == 1 {
			pod = &pods[0]
		}
		return pod != nil
	}, time.Minute, 50*time.Millisecond, "Deployment %s made no Pod", name)
	return pod
}

// podsOf lists the Pods labelled app=name that are not being deleted.
func (b *bed) podsOf(t *testing.T, ns, name string) []corev1.Pod {
	t.Helper()
	list, err := b.cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + name})
	require.NoError(t, err)
	return slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
}

// requireEvent waits for an Event of this reason about the Pod.
func (b *bed) requireEvent(t *testing.T, ns string, p *corev1.Pod, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	require.Eventually(t, func() bool {
		list, err := b.cs.EventsV1().Events(ns).List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, e := range list.Items {
			if e.Regarding.UID == p.UID && e.Reason == reason {
				found = e
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "no %s Event on Pod %s", reason, p.Name)
	return found
}
