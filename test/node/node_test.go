// Package node runs Pods on a real node of the test bed (kubelet,
// containerd, runc, CNI) and proves that a private registry's image is
// pulled with a Pod's imagePullSecrets and only with them, that recovery
// brings back a Deployment created before its registry was configured,
// and that node trust makes the node's containerd trust a registry's
// private CA once it is declared, and no longer once it is removed.
package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/test/testbed"
)

const (
	user     = "puller"
	password = "puller-Pa55-node"
	// noCredentials is what containerd reports when the registry answers
	// 401 with a Basic challenge and it holds no credentials for it.
	noCredentials = "authorization failed: no basic auth credentials"
)

// bed is the control plane, node and private registry the tests share.
type bed struct {
	cs    kubernetes.Interface
	c     client.Client
	cp    *testbed.ControlPlane
	node  *testbed.Node
	ca    *certgen.CA
	reg   *testbed.Registry
	image string
	// timings say how long each part took to start.
	timings []string
	stops   []func() error
}

var shared struct {
	once sync.Once
	bed  *bed
	err  error
}

func TestMain(m *testing.M) {
	// Said without -v too: make test runs this package quietly.
	if err := testbed.NodeSupported(); err != nil {
		fmt.Fprintf(os.Stderr, "node tests: skipped, this machine cannot run a node: %v\n", err)
	}
	code := m.Run()
	if b := shared.bed; b != nil {
		for i := len(b.stops) - 1; i >= 0; i-- {
			if err := b.stops[i](); err != nil {
				fmt.Fprintln(os.Stderr, "node tests:", err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// getBed starts the bed on first use; the test that starts it logs how
// long each part took.
func getBed(t *testing.T) *bed {
	t.Helper()
	if err := testbed.NodeSupported(); err != nil {
		t.Skipf("this machine cannot run a node: %v", err)
	}
	first := false
	shared.once.Do(func() {
		first = true
		shared.bed = &bed{}
		shared.err = shared.bed.start(t.Context())
	})
	if first {
		for _, l := range shared.bed.timings {
			t.Log(l)
		}
	}
	require.NoError(t, shared.err)
	return shared.bed
}

// start starts a control plane for a node, a node, and a private
// registry (TLS with a test CA, htpasswd) holding a runnable image.
func (b *bed) start(ctx context.Context) error {
	var out io.Writer
	if p := os.Getenv("REGCRED_NODE_LOG"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		b.stops = append(b.stops, f.Close)
		out = f
	}
	start := time.Now()
	// A node of its own: another run of these tests (another clone) may
	// run a node on this machine at the same time.
	nodeOpts, nodeIP, err := testbed.UniqueNode()
	if err != nil {
		return err
	}
	nodeOpts.Output = out
	cp, err := testbed.StartControlPlane(testbed.ControlPlaneOptions{Node: true, NodeIP: nodeIP, Output: out})
	if err != nil {
		return err
	}
	b.stops = append(b.stops, func() error { cp.Stop(); return nil })
	b.timings = append(b.timings, fmt.Sprintf("control plane with scheduler and controllers up in %s", since(start)))

	start = time.Now()
	node, err := testbed.StartNode(cp, nodeOpts)
	if err != nil {
		return err
	}
	b.stops = append(b.stops, func() error {
		start := time.Now()
		err := node.Stop()
		fmt.Fprintf(os.Stderr, "node tests: node stopped and cleaned up in %s\n", since(start))
		return err
	})
	b.timings = append(b.timings, fmt.Sprintf("node %s (containerd, kubelet) Ready in %s", node.Name, since(start)))
	b.node = node

	if b.ca, err = certgen.NewCA("regcred-node-test-ca", time.Hour); err != nil {
		return err
	}
	if b.reg, err = testbed.StartRegistry(testbed.RegistryOptions{CA: b.ca, Users: map[string]string{user: password}}); err != nil {
		return err
	}
	b.stops = append(b.stops, func() error { b.reg.Stop(); return nil })
	if err := node.TrustRegistry(b.reg); err != nil {
		return err
	}
	sleeper, err := testbed.GoProgram(ctx, testbed.WaitForTermSource)
	if err != nil {
		return err
	}
	if _, err := testbed.PushImage(ctx, b.reg, "team/sleeper", "v1", user, password, testbed.Image{
		Files:      []testbed.File{{Path: "/sleeper", Content: sleeper}},
		Entrypoint: []string{"/sleeper", "running"},
	}); err != nil {
		return err
	}
	b.image = b.reg.Host + "/team/sleeper:v1"
	b.cp = cp
	if b.cs, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return err
	}
	b.c, err = client.New(cp.Config, client.Options{})
	return err
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// pullSecret creates a kubernetes.io/dockerconfigjson Secret named name
// in ns, for the registry's user with password pass.
func (b *bed) pullSecret(t *testing.T, ns, name, pass string) string {
	t.Helper()
	s, err := testbed.PullSecret(ns, name, b.reg.Host, user, pass)
	require.NoError(t, err)
	_, err = b.cs.CoreV1().Secrets(ns).Create(t.Context(), s, metav1.CreateOptions{})
	require.NoError(t, err)
	return s.Name
}

// namespace makes a namespace whose default ServiceAccount exists (the
// ServiceAccount admission plugin refuses Pods until it does).
func (b *bed) namespace(t *testing.T) string {
	t.Helper()
	ns := testbed.NewNamespace(t, b.c, "node-")
	require.Eventually(t, func() bool {
		_, err := b.cs.CoreV1().ServiceAccounts(ns).Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil
	}, time.Minute, 50*time.Millisecond, "no default ServiceAccount in %s", ns)
	return ns
}

// createPod creates a Pod running the image, scheduled by kube-scheduler.
func (b *bed) createPod(t *testing.T, ns, name string, policy corev1.PullPolicy, secrets ...string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "sleeper", Image: b.image, ImagePullPolicy: policy,
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](5),
		},
	}
	for _, s := range secrets {
		p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	p, err := b.cs.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	return p
}

// waitPod waits until done says the Pod is where the test wants it, and
// returns the Pod.
func (b *bed) waitPod(t *testing.T, ns, name string, timeout time.Duration, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last *corev1.Pod
	for {
		p, err := b.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if done(p) {
				return p
			}
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, "Pod did not get there in time", "%s/%s after %s: %s", ns, name, timeout, describe(last))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	return p.Status.ContainerStatuses[0].State.Running != nil
}

// pullFailed tells whether the Pod's container waits because its image
// could not be pulled.
func pullFailed(p *corev1.Pod) bool {
	if len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	w := p.Status.ContainerStatuses[0].State.Waiting
	return w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") && w.Message != ""
}

func describe(p *corev1.Pod) string {
	if p == nil {
		return "no Pod read"
	}
	return fmt.Sprintf("phase %s, node %q, conditions %+v, containers %+v", p.Status.Phase, p.Spec.NodeName, p.Status.Conditions, p.Status.ContainerStatuses)
}

// requirePullRefused waits until the Pod's image pull is refused and
// checks the registry's answer in the container's status.
func (b *bed) requirePullRefused(t *testing.T, ns, name, want string) {
	t.Helper()
	start := time.Now()
	p := b.waitPod(t, ns, name, 2*time.Minute, pullFailed)
	w := p.Status.ContainerStatuses[0].State.Waiting
	t.Logf("Pod %s: %s in %s: %s", name, w.Reason, since(start), w.Message)
	assert.Contains(t, w.Message, want)
}

func TestImagePullSecrets(t *testing.T) {
	b := getBed(t)
	ns := b.namespace(t)

	require.True(t, t.Run("without a secret the pull is refused", func(t *testing.T) {
		b.createPod(t, ns, "no-secret", corev1.PullAlways)
		b.requirePullRefused(t, ns, "no-secret", noCredentials)
	}))

	require.True(t, t.Run("with a wrong password the pull is refused", func(t *testing.T) {
		wrong := b.pullSecret(t, ns, "wrong", "not-"+password)
		b.createPod(t, ns, "wrong-secret", corev1.PullAlways, wrong)
		b.requirePullRefused(t, ns, "wrong-secret", "401 Unauthorized")
	}))

	secret := b.pullSecret(t, ns, "pull", password)
	require.True(t, t.Run("with the secret the Pod runs", func(t *testing.T) {
		start := time.Now()
		b.createPod(t, ns, "with-secret", corev1.PullIfNotPresent, secret)
		p := b.waitPod(t, ns, "with-secret", 2*time.Minute, running)
		t.Logf("Pod with the secret (image pulled through basic auth): Running in %s, IP %s on %s", since(start), p.Status.PodIP, p.Spec.NodeName)
		assert.NotEmpty(t, p.Status.PodIP)
	}))

	require.True(t, t.Run("with the secret and the image cached", func(t *testing.T) {
		start := time.Now()
		b.createPod(t, ns, "cached", corev1.PullIfNotPresent, secret)
		p := b.waitPod(t, ns, "cached", 2*time.Minute, running)
		t.Logf("second Pod with the secret (image cached): Running in %s", since(start))
		ev := b.requireEvent(t, ns, p, "Pulled")
		assert.Contains(t, ev.Note, "already present on machine and can be accessed by the pod", "the kubelet ran the cached image, after checking the Pod's secret")
	}))

	// The kubelet checks a cached image's credentials again for a Pod
	// that brings none (KubeletEnsureSecretPulledImages, on by default
	// since 1.35): the secret matters even when the image is on the node.
	t.Run("without a secret a cached image is refused", func(t *testing.T) {
		b.createPod(t, ns, "cached-no-secret", corev1.PullIfNotPresent)
		b.requirePullRefused(t, ns, "cached-no-secret", noCredentials)
	})
}
