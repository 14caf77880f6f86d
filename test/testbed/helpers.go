package testbed

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Warnings collects the warnings the API server relays (admission
// warnings among them).
type Warnings struct {
	mu   sync.Mutex
	list []string
}

// HandleWarningHeaderWithContext records one warning.
func (w *Warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// Take returns the warnings so far and forgets them.
func (w *Warnings) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// Clientset returns a typed client for cfg whose warnings land in w (nil
// drops them).
func Clientset(t testing.TB, cfg *rest.Config, w *Warnings) *kubernetes.Clientset {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	if w != nil {
		cfg.WarningHandlerWithContext = w
	}
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return cs
}

// NewNamespace creates a namespace named from prefix for one test, and
// deletes it after.
func NewNamespace(t testing.TB, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	require.NoError(t, c.Create(t.Context(), ns))
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	return ns.Name
}

// PodSecretNames returns the names of a Pod's imagePullSecrets, in order.
func PodSecretNames(p *corev1.Pod) []string {
	names := []string{}
	for _, s := range p.Spec.ImagePullSecrets {
		names = append(names, s.Name)
	}
	return names
}

// LogBuffer is a log sink safe for concurrent writers, to check what a
// component logged.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
