package node

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/regcred/regcred/test/testbed"
)

// podLoop creates Pods one after the other, as a busy cluster does while
// regcred rolls out, and counts those admitted without their secret.
type podLoop struct {
	stop chan struct{}
	done chan struct{}
	// Written by the loop, read after done.
	created int
	lacking []string
	errs    []error
}

// neverScheduled keeps a Pod Pending: only its admission matters here,
// and a few hundred Pods would not run on one node.
var neverScheduled = map[string]string{"regcred.test/node": "none"}

// startPodLoop creates a Pod running image in ns every interval until
// stopped, checks that the API server's answer (the Pod as admitted) names
// want among its imagePullSecrets, and deletes it.
func (b *bed) startPodLoop(t *testing.T, ns, image, want string, interval time.Duration) *podLoop {
	t.Helper()
	l := &podLoop{stop: make(chan struct{}), done: make(chan struct{})}
	ctx := context.WithoutCancel(t.Context())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "loop-"},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "app", Image: image}},
			NodeSelector:                  neverScheduled,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
	var deletes sync.WaitGroup
	go func() {
		defer close(l.done)
		defer deletes.Wait()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			p, err := b.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				l.errs = append(l.errs, err)
				continue
			}
			l.created++
			if !slices.Contains(testbed.PodSecretNames(p), want) {
				l.lacking = append(l.lacking, p.Name+" at "+p.CreationTimestamp.Format(time.RFC3339))
			}
			deletes.Go(func() {
				_ = b.cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
			})
		}
	}()
	t.Cleanup(func() { l.Stop() })
	return l
}

// Stop ends the loop and waits for it; it returns the Pods created, those
// admitted without the secret, and the creations that failed.
func (l *podLoop) Stop() (created int, lacking []string, errs []error) {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	return l.created, l.lacking, l.errs
}

// waitServed waits until regcred, asked through a dry-run create of a Pod
// running image in ns, answers with want among its imagePullSecrets (or,
// with want empty, with none): the config it was given applies. A dry run
// makes no pull secret.
func (b *bed) waitServed(t *testing.T, ns, image, want string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}, NodeSelector: neverScheduled},
	}
	var got []string
	require.Eventually(t, func() bool {
		p, err := b.cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false
		}
		got = testbed.PodSecretNames(p)
		if want == "" {
			return len(got) == 0
		}
		return slices.Contains(got, want)
	}, time.Minute, 200*time.Millisecond, "regcred never answered with %q for %s in %s; last answer %v", want, image, ns, got)
}
