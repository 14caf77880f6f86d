package security

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/test/testbed"
)

const (
	eventually = 30 * time.Second
	tick       = 50 * time.Millisecond
)

// clientset returns a clientset of the admin that records warnings.
func clientset(t testing.TB, w *testbed.Warnings) *kubernetes.Clientset {
	return testbed.Clientset(t, env.cp.Config, w)
}

func pod(images ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "p-"}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('a'+i)), Image: img})
	}
	return p
}

// secretOf reads a Secret as the admin; nil if it does not exist.
func secretOf(t testing.TB, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := env.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		return nil
	}
	return &s
}

// metric sums a regcred metric's samples with these label values across
// the replicas now running.
func metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
	for _, r := range env.replicas {
		if r.Exited() {
			continue
		}
		resp, err := http.Get(r.MetricsURL)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
				continue
			}
			match := true
			for _, l := range labels {
				match = match && strings.Contains(line, l)
			}
			if match {
				var v float64
				fields := strings.Fields(line)
				_, _ = fmtSscan(fields[len(fields)-1], &v)
				sum += v
			}
		}
	}
	return sum
}

// canaryForms are the ways the canary could leak: plain, base64, the
// docker auth (base64 of user:password) and hex, as a hex dump prints it.
func canaryForms() []string {
	return []string{
		canary,
		base64.StdEncoding.EncodeToString([]byte(canary)),
		base64.StdEncoding.EncodeToString([]byte(user + ":" + canary)),
		base64.StdEncoding.EncodeToString([]byte(`"password":"` + canary)),
		hex.EncodeToString([]byte(canary)),
	}
}

// requireNoCanary fails if text holds the canary in any form, also across
// the line breaks and spaces of a wrapped or hex-dumped output.
func requireNoCanary(t testing.TB, where, text string) {
	t.Helper()
	joined := strings.Join(strings.Fields(text), "")
	for _, form := range canaryForms() {
		require.NotContains(t, text, form, "a credential in %s", where)
		require.NotContains(t, joined, form, "a credential in %s (across line breaks)", where)
	}
}

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }

// scrape returns the metrics of every running replica.
func scrape(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range env.replicas {
		if r.Exited() {
			continue
		}
		resp, err := http.Get(r.MetricsURL)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		b.Write(body)
	}
	return b.String()
}
