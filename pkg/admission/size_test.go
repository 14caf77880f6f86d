package admission

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// podWith returns a Pod grown n times along one dimension.
var podGrowth = []struct {
	name string
	pod  func(n int) []byte
}{
	{"containers", func(n int) []byte { return largePod(n, 10) }},
	{"env", func(n int) []byte { return largePod(1, n) }},
	{"volumes", volumePod},
	{"same image", func(n int) []byte {
		containers := make([]map[string]string, n)
		for i := range containers {
			containers[i] = map[string]string{"name": fmt.Sprintf("c%d", i), "image": "quay.io/org/app:1"}
		}
		return mustJSON(map[string]any{"spec": map[string]any{"containers": containers}})
	}},
	{"bad images", func(n int) []byte {
		containers := make([]map[string]string, n)
		for i := range containers {
			containers[i] = map[string]string{"name": fmt.Sprintf("c%d", i), "image": fmt.Sprintf("Host-%d.example.com/UPPER/x", i)}
		}
		return mustJSON(map[string]any{"spec": map[string]any{"containers": containers}})
	}},
	{"unserved hosts", func(n int) []byte {
		containers := make([]map[string]string, n)
		for i := range containers {
			containers[i] = map[string]string{"name": fmt.Sprintf("c%d", i), "image": fmt.Sprintf("host-%d.example.com/x", i)}
		}
		return mustJSON(map[string]any{"spec": map[string]any{"containers": containers}})
	}},
	{"pull secrets", func(n int) []byte {
		secrets := make([]map[string]string, n)
		for i := range secrets {
			secrets[i] = map[string]string{"name": fmt.Sprintf("s-%d", i%(n/2+1))}
		}
		secrets = append(secrets, map[string]string{"name": "regcred-hub"})
		return mustJSON(map[string]any{"spec": map[string]any{"imagePullSecrets": secrets, "containers": []any{map[string]string{"image": "quay.io/a/b"}, map[string]string{"image": "myorg/c"}}}})
	}},
	{"labels", func(n int) []byte {
		labels := map[string]string{}
		for i := range n {
			labels[fmt.Sprintf("label-%d", i)] = "v"
		}
		return mustJSON(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": labels}, "spec": map[string]any{"containers": []any{map[string]string{"image": "quay.io/a/b"}}}})
	}},
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// The handler's work grows linearly with the Pod, along every dimension
// a Pod can grow: ten times the Pod is about ten times the allocations,
// and about ten times the time, both measured here side by side (a
// quadratic step would make it a hundred).
func TestHandlerIsLinear(t *testing.T) {
	const small, large = 100, 1000
	for _, g := range podGrowth {
		t.Run(g.name, func(t *testing.T) {
			f := newFixture(t)
			f.h.Secrets = steadyStore{}
			// A huge Pod's notices are said once: the same namespace each
			// time would say nothing after the first.
			bodies := [2][]byte{podReview("app", string(g.pod(small))).json(), podReview("app", string(g.pod(large))).json()}
			var allocs, nanos [2]float64
			for i, body := range bodies {
				allocs[i] = testing.AllocsPerRun(5, func() { serveBody(t, f.h, body) })
				nanos[i] = fastest(3, func() { serveBody(t, f.h, body) })
			}
			t.Logf("%s ×%d: %.0f → %.0f allocations (×%.1f), %.0f → %.0f µs (×%.1f)", g.name, large/small,
				allocs[0], allocs[1], allocs[1]/allocs[0], nanos[0]/1e3, nanos[1]/1e3, nanos[1]/nanos[0])
			assert.LessOrEqual(t, allocs[1]/allocs[0], 15.0, "allocations grow faster than the Pod")
			assert.LessOrEqual(t, nanos[1]/nanos[0], 30.0, "time grows faster than the Pod")
		})
	}
}

// fastest times f over at least 100ms, n times, and returns its best
// time per call in nanoseconds, the least disturbed by whatever else the
// machine does.
func fastest(n int, f func()) float64 {
	best := 0.0
	for range n {
		runtime.GC()
		calls, start := 0, time.Now()
		for calls == 0 || time.Since(start) < 100*time.Millisecond {
			f()
			calls++
		}
		if ns := float64(time.Since(start).Nanoseconds()) / float64(calls); best == 0 || ns < best {
			best = ns
		}
	}
	return best
}
