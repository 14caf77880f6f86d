package status

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/registries"
)

// Each term of leadership writes the status at once, though this replica
// wrote the same report before: meanwhile another leader, or someone, may
// have changed or deleted the ConfigMap.
func TestReporterWritesAtEachTerm(t *testing.T) {
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: hub, type: docker, url: docker.io, username: {value: u}, password: {value: p}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	c := fake.NewClientBuilder().Build()
	r := NewReporter(&Reporter{Client: c, Namespace: "regcred", Name: "regcred-status", Cluster: "dev",
		Registries: func() *registries.Set { return set }, Config: func() configwatch.Status { return configwatch.Status{} },
		RefreshInterval: time.Hour})
	key := client.ObjectKey{Namespace: "regcred", Name: "regcred-status"}
	term := func() {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Start(ctx) }()
		require.Eventually(t, func() bool { return c.Get(t.Context(), key, &corev1.ConfigMap{}) == nil }, 5*time.Second, time.Millisecond)
		cancel()
		<-done
	}
	term()
	// Deleted while another replica leads.
	require.NoError(t, c.Delete(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "regcred-status"}}))
	require.True(t, apierrors.IsNotFound(c.Get(t.Context(), key, &corev1.ConfigMap{})))
	term()
}
