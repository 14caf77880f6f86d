package security

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
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
		// A replica that runs and cannot be scraped would read as 0.
		require.NoError(t, err, "scraping replica %s", r.Name)
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
	if !testbed.NoSecret(t, where, text, canaryForms()...) || !testbed.NoSecret(t, where+" (across line breaks)", joined, canaryForms()...) {
		t.FailNow()
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

// renderOptIn renders the chart's templates with the values it was
// installed with and set (an opt-in turned on), and returns the objects
// keep selects: what the opt-in adds, to create and remove as the admin.
func renderOptIn(t *testing.T, set string, keep func(*unstructured.Unstructured) bool, templates ...string) []client.Object {
	t.Helper()
	helm, err := testbed.Bin("helm")
	require.NoError(t, err)
	args := []string{"template", "regcred", chartDir(), "--namespace", regcredNS, "--kube-version", "1.30.0",
		"--values", filepath.Join(env.dir, "values.yaml"), "--set", set}
	for _, tpl := range templates {
		args = append(args, "--show-only", "templates/"+tpl)
	}
	cmd := exec.CommandContext(t.Context(), helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+env.dir, "HELM_CONFIG_HOME="+env.dir, "HELM_DATA_HOME="+env.dir)
	out, err := cmd.Output()
	require.NoError(t, err)
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []client.Object
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(t, err)
		if len(u.Object) > 0 && keep(u) {
			objs = append(objs, u)
		}
	}
}

// named keeps the objects of one name.
func named(name string) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool { return u.GetName() == name }
}

// kindsOf counts objects by kind.
func kindsOf(objs []client.Object) map[string]int {
	n := map[string]int{}
	for _, o := range objs {
		n[o.GetObjectKind().GroupVersionKind().Kind]++
	}
	return n
}
