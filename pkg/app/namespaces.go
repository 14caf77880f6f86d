package app

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// namespaceLabels reads namespace labels from a metadata-only cache, and
// from the API server only for a namespace the cache has not seen yet (one
// created a moment ago).
type namespaceLabels struct {
	cache, api client.Reader
}

func namespaceMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return m
}

func (n namespaceLabels) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	m := namespaceMeta()
	err := n.cache.Get(ctx, client.ObjectKey{Name: name}, m)
	if apierrors.IsNotFound(err) {
		err = n.api.Get(ctx, client.ObjectKey{Name: name}, m)
	}
	if err != nil {
		return nil, err
	}
	return m.Labels, nil
}
