package recovery

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/registries"
)

// blockingEvictor's eviction is under way until its context ends.
type blockingEvictor struct{ started chan struct{} }

func (e blockingEvictor) Evict(ctx context.Context, _, _ string, _ types.UID) error {
	close(e.started)
	<-ctx.Done() // the request in flight when the lease is lost
	return ctx.Err()
}

// An eviction cut short by the end of the term (the lease lost) is not a
// failed one: the next leader decides on the Pod again.
func TestTheTermsEndIsNoFailedEviction(t *testing.T) {
	cs := fake.NewClientset()
	set := load(t, quayOnly)
	counts := &counts{evictions: map[EvictionResult]int{}, events: map[string]int{}}
	ev := blockingEvictor{started: make(chan struct{})}
	c := &Controller{
		Registries: func() *registries.Set { return set }, HasConfig: func() bool { return true },
		Namespaces: &namespaceLabels{labels: map[string]map[string]string{"app": {}}},
		Exclusions: plan.Exclusions{},
		Informer:   func() cache.SharedIndexInformer { return NewPodInformer(cs) },
		Evictor:    ev, Events: &events{}, Metrics: counts, limiter: &open{}, clock: clocktesting.NewFakeClock(time.Now()),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Start(ctx) }()
	b := &bed{t: t, cs: cs, c: c}
	p := b.podObject("app", "ReplicaSet", "web", "quay.io/org/web:1", ReasonErrImagePull)
	_, err := cs.CoreV1().Pods("app").Create(t.Context(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	select {
	case <-ev.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no eviction")
	}
	cancel() // the lease is lost
	<-done
	assert.Zero(t, counts.eviction(Failed), "losing the lease is not a failed eviction")
}
