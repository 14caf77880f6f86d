package admission

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lines collects log lines.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.all = append(l.all, args)
	}, funcr.Options{Verbosity: 0})
}

// matching counts the lines that contain every one of subs.
func (l *lines) matching(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.all {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// Every admission that leaves an image without credentials says why at
// info level, once per namespace, registry (or image host) and reason per
// interval.
func TestHandleLogsWhyOncePerInterval(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.h.noticesOnce.Do(func() { f.h.notices = &notices{interval: time.Minute, now: func() time.Time { return now }} })
	var l lines
	f.h.Log = l.logger()
	review := func(ns, pod string) {
		require.True(t, admit(t, f.h, podReview(ns, pod)).allowed)
	}
	public := `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"nginx"},{"image":"ghcr.io/x/y"}]}}`
	policy := `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"sandbox.example.com/a"}]}}`
	for range 50 {
		review("app", public)
		review("app", policy)
	}
	assert.Equal(t, 1, l.matching(`"image"="nginx"`), "no registry for docker.io: said once")
	assert.Equal(t, 1, l.matching(`"image"="ghcr.io/x/y"`), "nor for ghcr.io")
	assert.Equal(t, 1, l.matching(`"reason"="cluster-policy"`))
	assert.Equal(t, 1, l.matching(`"registry"="sandbox-only"`))
	assert.Equal(t, 1, l.matching(`"why"="no configured registry serves docker.io/library/nginx"`), "the line says why")

	review("other", public)
	assert.Equal(t, 2, l.matching(`"image"="nginx"`), "another namespace is said again")
	review("app", `{"metadata":{"name":"p","labels":{"regcred.io/inject":"false"}},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`)
	assert.Equal(t, 1, l.matching(`"msg"="Pod left alone"`, `"reason"="pod-opted-out"`))

	now = now.Add(time.Minute)
	review("app", public)
	assert.Equal(t, 3, l.matching(`"image"="nginx"`), "and again after the interval")
}
