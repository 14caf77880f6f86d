package pullsecret

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metadatafake "k8s.io/client-go/metadata/fake"
)

// Presence keeps of the admin's Secrets their namespace and name only: an
// annotation such as kubectl's last-applied-configuration holds the
// Secret's data, credentials included.
func TestPresenceKeepsNamesOnly(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, metav1.AddMetaToScheme(scheme))
	secret := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "admin-creds", UID: "u1", ResourceVersion: "7",
			Labels:        map[string]string{"team": "a"},
			Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":{".dockerconfigjson":"Y2FuYXJ5"}}`},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
	}
	p := NewPresence(metadatafake.NewSimpleMetadataClient(scheme, secret))
	p.Track([]string{"admin-creds"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { _, known := p.Exists("app", "admin-creds"); return known }, 5*time.Second, time.Millisecond)
	exists, _ := p.Exists("app", "admin-creds")
	assert.True(t, exists)
	exists, _ = p.Exists("other", "admin-creds")
	assert.False(t, exists)

	p.mu.Lock()
	inf := p.informers["admin-creds"]
	p.mu.Unlock()
	items := inf.informer.GetStore().List()
	require.Len(t, items, 1)
	got := items[0].(*metav1.PartialObjectMetadata)
	assert.Equal(t, "app", got.Namespace)
	assert.Equal(t, "admin-creds", got.Name)
	assert.Empty(t, got.Annotations, "no annotation is kept")
	assert.Empty(t, got.Labels)
	assert.Empty(t, got.ManagedFields)
}
