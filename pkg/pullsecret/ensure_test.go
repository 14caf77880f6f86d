package pullsecret

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestEnsure(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientBuilder().WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred-mine", Namespace: "app"},
	}).Build()
	e := &Ensurer{Cache: c, API: c}
	w := &Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{}}`)}

	out, err := e.Ensure(ctx, "app", w, true)
	require.NoError(t, err)
	assert.Equal(t, WouldCreate, out)
	assert.Error(t, c.Get(ctx, client.ObjectKey{Namespace: "app", Name: "regcred-hub"}, &corev1.Secret{}), "a dry run writes nothing")

	out, err = e.Ensure(ctx, "app", w, false)
	require.NoError(t, err)
	assert.Equal(t, Created, out)
	out, err = e.Ensure(ctx, "app", w, false)
	require.NoError(t, err)
	assert.Equal(t, Unchanged, out)

	w2 := &Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{"x":{}}}`), ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	out, err = e.Ensure(ctx, "app", w2, true)
	require.NoError(t, err)
	assert.Equal(t, WouldUpdate, out)
	out, err = e.Ensure(ctx, "app", w2, false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	var s corev1.Secret
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "app", Name: "regcred-hub"}, &s))
	assert.Equal(t, corev1.SecretTypeDockerConfigJson, s.Type)
	assert.Equal(t, w2.Data, s.Data[corev1.DockerConfigJsonKey])
	assert.Equal(t, "2030-01-02T03:04:05Z", s.Annotations[AnnotationExpiresAt])
	assert.Equal(t, map[string]string{LabelManagedBy: ManagedBy, LabelRegistry: "hub"}, s.Labels)

	_, err = e.Ensure(ctx, "app", &Want{Name: "regcred-mine", Registry: "mine", Data: []byte("{}")}, false)
	assert.ErrorIs(t, err, ErrNotManaged)

	require.NoError(t, e.Delete(ctx, &s))
	assert.Error(t, c.Get(ctx, client.ObjectKey{Namespace: "app", Name: "regcred-hub"}, &corev1.Secret{}))
}

func TestMatchesExpiringTokens(t *testing.T) {
	exp := time.Date(2030, 1, 1, 12, 0, 0, 500, time.UTC)
	w := &Want{Name: "regcred-ecr", Registry: "ecr", Data: []byte("new"), ExpiresAt: exp}
	held := func(data string, at time.Time) *corev1.Secret {
		s := (&Want{Name: "regcred-ecr", Registry: "ecr", Data: []byte(data), ExpiresAt: at}).Secret("ns")
		return s
	}
	assert.True(t, w.Matches(held("new", exp)))
	assert.True(t, w.Matches(held("other", exp.Add(time.Hour))), "a token living longer is kept")
	assert.True(t, w.Matches(held("other", exp)), "a token living as long is kept")
	assert.False(t, w.Matches(held("old", exp.Add(-time.Hour))), "an older token is replaced")
	assert.False(t, w.Matches(held("old", time.Time{})), "a secret without expiry is replaced")
	static := &Want{Name: "regcred-ecr", Registry: "ecr", Data: []byte("new")}
	assert.False(t, static.Matches(held("new", exp)), "credentials that stopped expiring drop the annotation")
	assert.Equal(t, exp.Truncate(time.Second), ExpiresAt(held("x", exp)))
}
