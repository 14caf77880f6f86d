package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/k8schain"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/test/testbed"
)

// warnings collects the admission warnings the API server relays.
type warnings = testbed.Warnings

// clientset returns a typed client whose warnings land in w.
func clientset(t *testing.T, w *warnings) *kubernetes.Clientset {
	return testbed.Clientset(t, env.cp.Config, w)
}

// newNamespace creates a namespace for one test, removed after it.
func newNamespace(t *testing.T) string { return testbed.NewNamespace(t, env.client, "e2e-") }

// pod returns a Pod running images.
func pod(images ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-"}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('a'+i)), Image: img})
	}
	return p
}

// createPod creates p through the API, as kubectl would, and returns what
// the API server stored.
func createPod(t *testing.T, cs *kubernetes.Clientset, ns string, p *corev1.Pod, opts metav1.CreateOptions) *corev1.Pod {
	t.Helper()
	out, err := cs.CoreV1().Pods(ns).Create(t.Context(), p, opts)
	require.NoError(t, err)
	return out
}

func secretNames(p *corev1.Pod) []string { return testbed.PodSecretNames(p) }

// setConfig stores a new config and waits until regcred serves it.
func setConfig(t *testing.T, yaml string) {
	t.Helper()
	rv := writeConfig(t, yaml)
	// The last look's status is what a failure reports.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := env.app.ConfigStatus()
		assert.Equal(c, rv, s.Version, "the config version serving")
		assert.NoError(c, s.LastError)
	}, 30*time.Second, 20*time.Millisecond, "regcred did not load config version %s", rv)
}

// restoreConfig puts the base config back after the test.
func restoreConfig(t *testing.T) {
	t.Cleanup(func() {
		rv := writeConfigCtx(context.Background(), t, baseConfig())
		require.Eventually(t, func() bool {
			s := env.app.ConfigStatus()
			return s.Version == rv && s.LastError == nil
		}, 30*time.Second, 20*time.Millisecond, "regcred did not load the base config again")
	})
}

func writeConfig(t *testing.T, yaml string) string {
	return writeConfigCtx(t.Context(), t, yaml)
}

func writeConfigCtx(ctx context.Context, t *testing.T, yaml string) string {
	t.Helper()
	var cm corev1.ConfigMap
	require.NoError(t, env.client.Get(ctx, client.ObjectKey{Namespace: regcredNamespace, Name: configName}, &cm))
	cm.Data = map[string]string{"config.yaml": yaml}
	require.NoError(t, env.client.Update(ctx, &cm))
	return cm.ResourceVersion
}

// pull fetches the manifest of image with the credentials the Pod's
// imagePullSecrets give, resolved by go-containerregistry's k8schain the way
// the kubelet resolves them.
func pull(t *testing.T, reg *testbed.Registry, p *corev1.Pod, image string) error {
	t.Helper()
	kc, err := k8schain.New(t.Context(), clientset(t, nil), k8schain.Options{
		Namespace:          p.Namespace,
		ServiceAccountName: kauth.NoServiceAccount,
		ImagePullSecrets:   secretNames(p),
	})
	require.NoError(t, err)
	return fetch(t, reg, image, remote.WithAuthFromKeychain(kc))
}

func fetch(t *testing.T, reg *testbed.Registry, image string, auth remote.Option) error {
	t.Helper()
	ref, err := name.ParseReference(image)
	require.NoError(t, err)
	_, err = remote.Get(ref, auth, remote.WithTransport(reg.Transport), remote.WithContext(t.Context()))
	return err
}

// assertRefused checks that image cannot be fetched anonymously: 401.
func assertRefused(t *testing.T, reg *testbed.Registry, image string) {
	t.Helper()
	err := fetch(t, reg, image, remote.WithAuth(authn.Anonymous))
	var terr *transport.Error
	require.True(t, errors.As(err, &terr), "want a registry error, got %v", err)
	assert.Equal(t, http.StatusUnauthorized, terr.StatusCode)
}

// managedSecret returns the pull secret regcred made in ns, or nil.
func managedSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	err := env.client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &s)
	if err != nil {
		require.True(t, client.IgnoreNotFound(err) == nil, "reading secret: %v", err)
		return nil
	}
	assert.True(t, pullsecret.IsManaged(&s), "secret %s/%s is labelled as regcred's", ns, name)
	return &s
}

// emptyReader is a cache that holds nothing yet.
type emptyReader struct{}

func (emptyReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(corev1.Resource("configmaps"), key.Name)
}

func (emptyReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }
