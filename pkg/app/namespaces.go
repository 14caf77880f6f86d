package app

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/nscache"
)

// namespaceLabels reads namespace labels from the namespace cache, and
// from the API server only for a namespace the cache has not seen yet (one
// created a moment ago).
type namespaceLabels struct {
	cache *nscache.Cache
	api   client.Reader
}

func (n namespaceLabels) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	if labels, ok := n.cache.Labels(name); ok {
		return labels, nil
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := n.api.Get(ctx, client.ObjectKey{Name: name}, m); err != nil {
		return nil, err
	}
	return m.Labels, nil
}
