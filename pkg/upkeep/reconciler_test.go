package upkeep

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
)

type counts struct{ ensured, deleted map[string]int }

func (c *counts) SecretEnsured(r string, o pullsecret.Outcome) {
	if o != pullsecret.Unchanged {
		c.ensured[r]++
	}
}
func (c *counts) SecretDeleted(r string) { c.deleted[r]++ }

type nsLabels map[string]map[string]string

func (n nsLabels) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	return n[name], nil
}

func managed(ns, registry string, data string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: config.SecretNamePrefix + registry,
			Labels: map[string]string{pullsecret.LabelManagedBy: pullsecret.ManagedBy, pullsecret.LabelRegistry: registry}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(data)},
	}
}

func TestReconcileAll(t *testing.T) {
	cfg, err := config.Parse([]byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: keep, type: quay, url: quay.io, username: {value: u}, password: {value: new}}
- {name: switched, type: other, url: a.example.com, pullSecret: {mode: image-pull-secret, name: theirs}}
- {name: excluded, type: other, url: b.example.com, username: {value: u}, password: {value: p}, clusters: {mode: inject-only, names: [prod]}}
- {name: scoped, type: other, url: c.example.com, username: {value: u}, password: {value: p}, namespaceSelector: {matchLabels: {team: a}}}
`))
	require.NoError(t, err)
	set, err := registries.Build(t.Context(), cfg, registries.Options{ClusterName: "dev", StoredIn: config.InSecret})
	require.NoError(t, err)
	unmanaged := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "regcred-gone"}}
	c := fake.NewClientBuilder().WithObjects(
		managed("a", "keep", "old"), managed("b", "keep", "old"),
		managed("a", "gone", "x"), managed("a", "switched", "x"), managed("a", "excluded", "x"),
		managed("a", "scoped", "x"), managed("b", "scoped", "x"), unmanaged,
	).Build()
	m := &counts{ensured: map[string]int{}, deleted: map[string]int{}}
	r := &Reconciler{
		Registries: func() *registries.Set { return set },
		HasConfig:  func() bool { return true },
		Cache:      c,
		Ensurer:    &pullsecret.Ensurer{Cache: c, API: c},
		Metrics:    m,
		Namespaces: nsLabels{"a": {"team": "a"}, "b": {"team": "b"}},
	}
	_, err = r.Reconcile(t.Context(), allSecrets)
	require.NoError(t, err)

	var list corev1.SecretList
	require.NoError(t, c.List(t.Context(), &list))
	left := map[string]string{}
	for _, s := range list.Items {
		left[s.Namespace+"/"+s.Name] = string(s.Data[corev1.DockerConfigJsonKey])
	}
	want, err := set.Get("keep").Want(t.Context())
	require.NoError(t, err)
	scoped, err := set.Get("scoped").Want(t.Context())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"a/regcred-keep":   string(want.Data),
		"b/regcred-keep":   string(want.Data),
		"a/regcred-scoped": string(scoped.Data),
		"b/regcred-gone":   "", // not regcred's: never touched
	}, left)
	assert.Equal(t, map[string]int{"keep": 2, "scoped": 1}, m.ensured)
	assert.Equal(t, map[string]int{"gone": 1, "switched": 1, "excluded": 1, "scoped": 1}, m.deleted)
}

func TestReconcileDeletesNothingWithoutAConfig(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(managed("a", "gone", "x")).Build()
	r := &Reconciler{
		Registries: registries.Empty,
		HasConfig:  func() bool { return false },
		Cache:      c,
		Ensurer:    &pullsecret.Ensurer{Cache: c, API: c},
		Metrics:    &counts{ensured: map[string]int{}, deleted: map[string]int{}},
	}
	_, err := r.Reconcile(t.Context(), allSecrets)
	require.NoError(t, err)
	assert.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "a", Name: "regcred-gone"}, &corev1.Secret{}), "before a good config loads, nothing is swept")
}
