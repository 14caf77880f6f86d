package recovery

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// terminal leaves out Pods that have ended: none of them pulls again, and
// at scale they are many (every finished Job's).
var terminal = fields.AndSelectors(
	fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
	fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
).String()

// NewPodInformer returns the informer of the Pods recovery looks at, every
// namespace's Pods that have not ended, stripped to their recovery view
// (Strip) before they are stored: the cache never holds a whole Pod.
func NewPodInformer(client kubernetes.Interface) cache.SharedIndexInformer {
	inf := NewFullPodInformer(client)
	// Set before the informer runs, it cannot fail.
	_ = inf.SetTransform(Strip)
	return inf
}

// NewFullPodInformer returns the same informer without the transform: its
// cache holds whole Pods. It is the baseline of the memory measurement.
func NewFullPodInformer(client kubernetes.Interface) cache.SharedIndexInformer {
	// Indexed by namespace: a namespace's change looks at its Pods only.
	indexers := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	return coreinformers.NewFilteredPodInformer(client, metav1.NamespaceAll, 0, indexers, func(o *metav1.ListOptions) {
		o.FieldSelector = terminal
	})
}
