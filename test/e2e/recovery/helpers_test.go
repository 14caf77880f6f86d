package recovery

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn/k8schain"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/test/testbed"
)

const (
	eventually = time.Minute
	tick       = 50 * time.Millisecond
)

// replica is a regcred running in this process, the one the API server
// calls.
type replica struct {
	*testbed.Regcred
	metrics *prometheus.Registry
}

// startReplica starts regcred, with recovery on or off, as its own
// (all-powerful) ServiceAccount: the chart's least privilege is proven in
// test/security. It stops when the test ends.
func startReplica(t *testing.T, recovery bool) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := app.DefaultOptions()
	opts.Namespace, opts.ConfigMap, opts.ClusterName = regcredNamespace, configName, "e2e"
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.ShutdownTimeout = 5 * time.Second
	opts.Recovery = recovery
	self, err := testbed.ServiceAccount(ctx, env.client, env.cp.Config, regcredNamespace, "regcred", "cluster-admin")
	require.NoError(t, err)
	r := &replica{metrics: prometheus.NewRegistry()}
	r.Regcred, err = testbed.StartRegcred(ctx, self, env.ca, opts, app.Deps{Metrics: r.metrics})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); r.Wait() })
	select {
	case <-r.App.Elected():
	case <-time.After(eventually):
		require.FailNow(t, "regcred did not become the leader")
	}
	return r
}

// setConfig stores a config and waits until the replica serves it.
func (r *replica) setConfig(t *testing.T, yaml string) {
	t.Helper()
	// Also from a cleanup, when the test's context has ended.
	ctx := context.Background()
	var cm corev1.ConfigMap
	require.NoError(t, env.client.Get(ctx, client.ObjectKey{Namespace: regcredNamespace, Name: configName}, &cm))
	cm.Data = map[string]string{"config.yaml": yaml}
	require.NoError(t, env.client.Update(ctx, &cm))
	// The last look's status is what a failure reports.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := r.App.ConfigStatus()
		assert.Equal(c, cm.ResourceVersion, s.Version, "the config version serving")
		assert.NoError(c, s.LastError)
	}, eventually, tick, "regcred did not load config version %s", cm.ResourceVersion)
}

// counter returns the value of one of the replica's counters with this
// label value.
func (r *replica) counter(t *testing.T, metric, label, value string) float64 {
	t.Helper()
	families, err := r.metrics.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func clientset(t *testing.T) *kubernetes.Clientset { return testbed.Clientset(t, env.cp.Config, nil) }

// namespace makes a namespace whose default ServiceAccount exists (the
// ServiceAccount admission plugin refuses Pods until it does).
func namespace(t *testing.T) string {
	t.Helper()
	ns := testbed.NewNamespace(t, env.client, "recovery-")
	require.Eventually(t, func() bool {
		_, err := clientset(t).CoreV1().ServiceAccounts(ns).Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil
	}, eventually, tick, "no default ServiceAccount in %s", ns)
	return ns
}

// podSpec runs the registry's image, with these pull secrets.
func podSpec(secrets ...string) corev1.PodSpec {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: env.image}}}
	for _, s := range secrets {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return spec
}

// deployment creates a Deployment of one replica labelled app=name and
// returns its Pod, once kube-controller-manager has made it.
func deployment(t *testing.T, ns, name string, secrets ...string) *corev1.Pod {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(secrets...)},
		},
	}
	require.NoError(t, env.client.Create(t.Context(), d))
	var pod *corev1.Pod
	require.Eventually(t, func() bool {
		pods := podsOf(t, ns, name)
		if len(pods) == 1 {
			pod = &pods[0]
		}
		return pod != nil
	}, eventually, tick, "Deployment %s made no Pod", name)
	return pod
}

// podsOf lists the Pods labelled app=name that are not being deleted.
func podsOf(t *testing.T, ns, name string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	require.NoError(t, env.client.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels{"app": name}))
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// barePod creates a Pod no controller owns.
func barePod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}}, Spec: podSpec()}
	require.NoError(t, env.client.Create(t.Context(), p))
	return p
}

// failPull reports, as the kubelet does, that the Pod's image could not be
// pulled: its container waits with reason (ErrImagePull, ImagePullBackOff)
// and has never run, so the Pod is Pending.
func failPull(t *testing.T, p *corev1.Pod, reason string) {
	t.Helper()
	setStatus(t, p, corev1.PodPending, corev1.ContainerStatus{
		Name: "app", Image: env.image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "failed to pull image: 401 Unauthorized"}},
	})
}

// failPullAfterRun reports, as the kubelet does, a container that ran,
// was restarted (its liveness probe failed), and whose image cannot be
// pulled again (its pull secret was deleted): the Pod is Running, and not
// ready.
func failPullAfterRun(t *testing.T, p *corev1.Pod) {
	t.Helper()
	setStatus(t, p, corev1.PodRunning, corev1.ContainerStatus{
		Name: "app", Image: env.image, RestartCount: 1,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "failed to pull image: 401 Unauthorized"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}},
	})
}

func setStatus(t *testing.T, p *corev1.Pod, phase corev1.PodPhase, status corev1.ContainerStatus) {
	t.Helper()
	cs := clientset(t)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := cs.CoreV1().Pods(p.Namespace).Get(t.Context(), p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Phase = phase
		cur.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{status}
		_, err = cs.CoreV1().Pods(p.Namespace).UpdateStatus(t.Context(), cur, metav1.UpdateOptions{})
		return err
	}))
}

// budget creates a PodDisruptionBudget that allows no disruption of the
// Pods labelled app=name.
func budget(t *testing.T, ns, name string) {
	t.Helper()
	require.NoError(t, env.client.Create(t.Context(), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
		},
	}))
}

// eventsOn returns the Events about the Pod with uid.
func eventsOn(t *testing.T, ns string, uid types.UID) []eventsv1.Event {
	t.Helper()
	list, err := clientset(t).EventsV1().Events(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == uid {
			out = append(out, e)
		}
	}
	return out
}

// waitForEvent waits for an Event of this reason about the Pod.
func waitForEvent(t *testing.T, p *corev1.Pod, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	require.Eventually(t, func() bool {
		for _, e := range eventsOn(t, p.Namespace, p.UID) {
			if e.Reason == reason {
				found = e
				return true
			}
		}
		return false
	}, eventually, tick, "no %s Event on Pod %s/%s", reason, p.Namespace, p.Name)
	return found
}

// exists tells whether the Pod with this UID is still there and not being
// deleted.
func exists(t *testing.T, p *corev1.Pod) bool {
	t.Helper()
	var cur corev1.Pod
	err := env.client.Get(t.Context(), client.ObjectKeyFromObject(p), &cur)
	if err != nil {
		require.NoError(t, client.IgnoreNotFound(err))
		return false
	}
	return cur.UID == p.UID && cur.DeletionTimestamp == nil
}

// pull fetches the image's manifest with the credentials of the Pod's
// imagePullSecrets, resolved as the kubelet resolves them.
func pull(t *testing.T, p *corev1.Pod) error {
	t.Helper()
	kc, err := k8schain.New(t.Context(), clientset(t), k8schain.Options{
		Namespace:          p.Namespace,
		ServiceAccountName: kauth.NoServiceAccount,
		ImagePullSecrets:   testbed.PodSecretNames(p),
	})
	require.NoError(t, err)
	ref, err := name.ParseReference(p.Spec.Containers[0].Image)
	require.NoError(t, err)
	_, err = remote.Get(ref, remote.WithAuthFromKeychain(kc), remote.WithTransport(env.reg.Transport), remote.WithContext(t.Context()))
	return err
}
