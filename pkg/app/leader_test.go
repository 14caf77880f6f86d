package app

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// timeline records what happened, in order.
type timeline struct {
	mu     sync.Mutex
	events []string
}

func (tl *timeline) add(e string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, e)
}

func (tl *timeline) get() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]string(nil), tl.events...)
}

// memLock is a lease in memory; giving it up is on the timeline.
type memLock struct {
	mu  sync.Mutex
	rec *resourcelock.LeaderElectionRecord
	tl  *timeline
}

func (l *memLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rec == nil {
		return nil, nil, apierrors.NewNotFound(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "regcred")
	}
	rec := *l.rec
	raw, _ := json.Marshal(rec)
	return &rec, raw, nil
}

func (l *memLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec = &r
	return nil
}

func (l *memLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.HolderIdentity == "" {
		l.tl.add("lease given up")
	}
	l.rec = &r
	return nil
}

func (l *memLock) RecordEvent(string) {}
func (l *memLock) Identity() string   { return "replica-a" }
func (l *memLock) Describe() string   { return "regcred/regcred" }

// slowWorker takes a while to stop once its term ends (a last flush).
type slowWorker struct{ tl *timeline }

func (w slowWorker) Start(ctx context.Context) error {
	w.tl.add("worker started")
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond)
	w.tl.add("worker stopped")
	return nil
}

// The lease is given up only once the term's workers have stopped, and
// Start returns only then: the next leader never works beside them.
func TestLeaseIsGivenUpOnceTheWorkersStopped(t *testing.T) {
	tl := &timeline{}
	g := &leaderGroup{lock: &memLock{tl: tl}, elected: make(chan struct{}),
		leaseDuration: 2 * time.Second, renewDeadline: time.Second, retryPeriod: 100 * time.Millisecond}
	g.add(slowWorker{tl: tl})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Start(ctx) }()
	select {
	case <-g.Elected():
	case <-time.After(10 * time.Second):
		t.Fatal("never elected")
	}
	require.Eventually(t, func() bool { return len(tl.get()) == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	tl.add("Start returned")
	assert.Equal(t, []string{"worker started", "worker stopped", "lease given up", "Start returned"}, tl.get())
}
