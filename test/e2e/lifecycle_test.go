package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/secretstore"
)

// gone waits until regcred has deleted a pull secret.
func gone(t *testing.T, ns, name string) {
	t.Helper()
	require.Eventually(t, func() bool { return managedSecret(t, ns, name) == nil }, 30*time.Second, 50*time.Millisecond, "secret %s/%s was not deleted", ns, name)
}

// podsUntouched checks running Pods keep what they were admitted with.
func podsUntouched(t *testing.T, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		var now corev1.Pod
		require.NoError(t, env.client.Get(t.Context(), client.ObjectKeyFromObject(p), &now))
		assert.Equal(t, secretNames(p), secretNames(&now))
		assert.Equal(t, p.ResourceVersion, now.ResourceVersion, "the Pod was not modified")
	}
}

// A credential edit reaches every pull secret of the registry, in every
// namespace, within seconds.
func TestCredentialEditReachesEveryNamespace(t *testing.T) {
	restoreConfig(t)
	cs := clientset(t, nil)
	var namespaces []string
	for range 3 {
		ns := newNamespace(t)
		namespaces = append(namespaces, ns)
		createPod(t, cs, ns, pod(env.imageA), metav1.CreateOptions{})
	}
	var creds corev1.Secret
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKey{Namespace: regcredNamespace, Name: credsSecret}, &creds))
	if string(creds.Data["reg-a-carol"]) != passwords["carol"] {
		creds.Data["reg-a-carol"] = []byte(passwords["carol"])
		require.NoError(t, env.client.Update(t.Context(), &creds))
	}
	start := time.Now()
	setConfig(t, config(
		registryConfig("reg-a", env.regA, "carol", "reg-a-carol", ""),
		registryConfig("reg-b", env.regB, "bob", "reg-b", ""),
	))
	for _, ns := range namespaces {
		require.Eventually(t, func() bool {
			s := managedSecret(t, ns, "regcred-reg-a")
			return s != nil && strings.Contains(string(s.Data[corev1.DockerConfigJsonKey]), `"username":"carol"`)
		}, 30*time.Second, 50*time.Millisecond, "secret in %s not updated", ns)
	}
	t.Logf("3 namespaces updated %s after the edit", time.Since(start).Round(time.Millisecond))
}

// Removing a registry, switching it to image-pull-secret mode or excluding
// this cluster deletes the pull secrets regcred made for it; running Pods
// are untouched.
func TestRetiredRegistriesLoseTheirSecrets(t *testing.T) {
	restoreConfig(t)
	for _, tc := range []struct {
		name   string
		config string
	}{
		{"removed", config(registryConfig("reg-a", env.regA, "alice", "reg-a", ""))},
		{"switched to image-pull-secret", config(
			registryConfig("reg-a", env.regA, "alice", "reg-a", ""),
			registryConfig("reg-b", env.regB, "bob", "reg-b", "  pullSecret: {mode: image-pull-secret, name: theirs}\n"))},
		{"cluster excluded", config(
			registryConfig("reg-a", env.regA, "alice", "reg-a", ""),
			registryConfig("reg-b", env.regB, "bob", "reg-b", "  clusters: {mode: inject-everywhere-except, names: [e2e]}\n"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setConfig(t, baseConfig())
			ns := newNamespace(t)
			p := createPod(t, clientset(t, nil), ns, pod(env.imageA, env.imageB), metav1.CreateOptions{})
			require.NotNil(t, managedSecret(t, ns, "regcred-reg-b"))

			setConfig(t, tc.config)
			gone(t, ns, "regcred-reg-b")
			assert.NotNil(t, managedSecret(t, ns, "regcred-reg-a"), "the other registry's secret stays")
			podsUntouched(t, p)
		})
	}
}

// A pull secret left by a registry that no longer exists (made and
// recorded in the index before this replica started) is swept.
func TestStartupSweep(t *testing.T) {
	gone(t, staleNamespace, "regcred-retired")
	require.Eventually(t, func() bool {
		_, known := secretstore.NewIndex(env.client, regcredNamespace).Lookup(t.Context(), staleNamespace, "retired", false)
		return !known
	}, 30*time.Second, 100*time.Millisecond, "and its index entry")
}

// Per-registry namespace scoping: a Pod outside the registry's namespace
// selector gets nothing for it and no secret is made there; a namespace
// that leaves the selector loses the secret.
func TestNamespaceScoping(t *testing.T) {
	restoreConfig(t)
	setConfig(t, config(
		registryConfig("reg-a", env.regA, "alice", "reg-a", ""),
		registryConfig("reg-b", env.regB, "bob", "reg-b", "  namespaceSelector: {matchLabels: {team: b}}\n"),
	))
	cs := clientset(t, nil)
	outside := newNamespace(t)
	got := createPod(t, cs, outside, pod(env.imageA, env.imageB), metav1.CreateOptions{})
	assert.Equal(t, []string{"regcred-reg-a"}, secretNames(got))
	assert.Nil(t, managedSecret(t, outside, "regcred-reg-b"), "no secret in an out-of-scope namespace")
	assert.Error(t, pull(t, env.regB, got, env.imageB))

	inside := newNamespace(t)
	var ns corev1.Namespace
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKey{Name: inside}, &ns))
	ns.Labels["team"] = "b"
	require.NoError(t, env.client.Update(t.Context(), &ns))
	got = createPod(t, cs, inside, pod(env.imageA, env.imageB), metav1.CreateOptions{})
	assert.Equal(t, []string{"regcred-reg-a", "regcred-reg-b"}, secretNames(got))
	assert.NoError(t, pull(t, env.regB, got, env.imageB))

	// The namespace leaves the team: the secret goes.
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKey{Name: inside}, &ns))
	delete(ns.Labels, "team")
	require.NoError(t, env.client.Update(t.Context(), &ns))
	gone(t, inside, "regcred-reg-b")
	assert.NotNil(t, managedSecret(t, inside, "regcred-reg-a"))
}
