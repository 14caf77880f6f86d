package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn/k8schain"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/test/testbed"
)

type warnings = testbed.Warnings

func clientset(t *testing.T, w *warnings) *kubernetes.Clientset {
	return testbed.Clientset(t, env.cp.Config, w)
}

func newNamespace(t *testing.T) string { return testbed.NewNamespace(t, env.client, "ecr-") }

func createPod(t *testing.T, cs *kubernetes.Clientset, ns string, images ...string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-"}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('a'+i)), Image: img})
	}
	out, err := cs.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

func secretNames(p *corev1.Pod) []string { return testbed.PodSecretNames(p) }

// pull fetches image's manifest with the Pod's imagePullSecrets, resolved
// by k8schain as the kubelet resolves them.
func pull(ctx context.Context, t *testing.T, p *corev1.Pod, image string) error {
	t.Helper()
	kc, err := k8schain.New(ctx, clientset(t, nil), k8schain.Options{
		Namespace: p.Namespace, ServiceAccountName: kauth.NoServiceAccount, ImagePullSecrets: secretNames(p),
	})
	require.NoError(t, err)
	return fetch(ctx, image, remote.WithAuthFromKeychain(kc))
}

func fetch(ctx context.Context, image string, auth remote.Option) error {
	ref, err := name.ParseReference(image)
	if err != nil {
		return err
	}
	_, err = remote.Get(ref, auth, remote.WithTransport(env.ecr.Transport()), remote.WithContext(ctx))
	return err
}

// isUnauthorized tells a 401 from the registry.
func isUnauthorized(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized
}

// heldToken returns the password and recorded expiry of the token a
// managed pull secret holds.
func heldToken(t *testing.T, ns, secret, host string) (password string, expires time.Time, ok bool) {
	t.Helper()
	var s corev1.Secret
	if err := env.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secret}, &s); err != nil {
		return "", time.Time{}, false
	}
	password, expires = tokenIn(t, &s, host)
	return password, expires, true
}

// tokenIn returns the password and recorded expiry of the token a managed
// pull secret holds for host.
func tokenIn(t *testing.T, s *corev1.Secret, host string) (password string, expires time.Time) {
	t.Helper()
	var cfg struct {
		Auths map[string]struct{ Username, Password string } `json:"auths"`
	}
	require.NoError(t, json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg))
	a, found := cfg.Auths[host]
	require.True(t, found, "the secret has a key for %s", host)
	require.Equal(t, "AWS", a.Username)
	return a.Password, pullsecret.ExpiresAt(s)
}

// callsSince returns the calls made since a time, for one access key.
func callsSince(since time.Time, keyID string) []testbed.ECRCall {
	var out []testbed.ECRCall
	for _, c := range env.ecr.Calls() {
		if !c.Time.Before(since) && c.AccessKeyID == keyID {
			out = append(out, c)
		}
	}
	return out
}

// metric returns the value of a regcred metric with the registry label: a
// counter summed over every replica this process ran, a gauge as the
// latest replica that has it sets it.
func metric(t *testing.T, name, registry string) float64 {
	t.Helper()
	sum, gauge := 0.0, 0.0
	for _, reg := range replicaMetrics.all() {
		v, isGauge, ok := metricOf(t, reg, name, registry)
		switch {
		case !ok:
		case isGauge:
			gauge = v
		default:
			sum += v
		}
	}
	return sum + gauge
}

func metricOf(t *testing.T, reg prometheus.Gatherer, name, registry string) (value float64, isGauge, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "registry" && l.GetValue() == registry {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue(), false, true
					}
					return m.GetGauge().GetValue(), true, true
				}
			}
		}
	}
	return 0, false, false
}
