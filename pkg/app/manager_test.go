package app

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Of the Secrets in regcred's namespace, the cache keeps the data of
// those regcred may read; Helm's release records (the whole rendered
// chart, every revision) keep their metadata only.
func TestSecretCacheKeepsNoHelmRelease(t *testing.T) {
	mf := []metav1.ManagedFieldsEntry{{Manager: "helm"}}
	release := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.regcred.v3", ManagedFields: mf,
		Labels: map[string]string{"owner": "helm"}}, Type: "helm.sh/release.v1", Data: map[string][]byte{"release": []byte("H4sI...")}}
	got, err := transformSecret(release)
	require.NoError(t, err)
	s := got.(*corev1.Secret)
	assert.Nil(t, s.Data)
	assert.Nil(t, s.ManagedFields)
	assert.Equal(t, release.Name, s.Name)
	assert.Equal(t, "helm", s.Labels["owner"])

	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "quay-creds", ManagedFields: mf}, Data: map[string][]byte{"password": []byte("p")}}
	got, err = transformSecret(creds)
	require.NoError(t, err)
	s = got.(*corev1.Secret)
	assert.Equal(t, []byte("p"), s.Data["password"], "a Secret the config may refer to keeps its data")
	assert.Nil(t, s.ManagedFields)

	tomb := "not a Secret"
	got, err = transformSecret(tomb)
	require.NoError(t, err)
	assert.Equal(t, tomb, got)
}
