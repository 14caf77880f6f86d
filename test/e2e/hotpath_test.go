package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regcred/regcred/test/testbed"
)

// In steady state an admission makes no API call: once a namespace has its
// pull secrets, admitting more Pods there reads only regcred's caches.
func TestSteadyStateAdmissionsMakeNoAPICall(t *testing.T) {
	ns := newNamespace(t)
	cs := clientset(t, nil)
	first := createPod(t, cs, ns, pod(env.imageA, env.imageB), metav1.CreateOptions{})
	require.Equal(t, []string{"regcred-reg-a", "regcred-reg-b"}, secretNames(first))
	// Wait until regcred's cache holds both secrets it created.
	require.Eventually(t, func() bool {
		before := len(env.requests.Requests())
		createPod(t, cs, ns, pod(env.imageA, env.imageB), metav1.CreateOptions{})
		return len(secretRequests(env.requests.Requests()[before:])) == 0
	}, 30*time.Second, 100*time.Millisecond)

	before := len(env.requests.Requests())
	const pods = 20
	for range pods {
		got := createPod(t, cs, ns, pod(env.imageA, "nginx", env.imageB), metav1.CreateOptions{})
		assert.Equal(t, []string{"regcred-reg-a", "regcred-reg-b"}, secretNames(got))
	}
	assert.Empty(t, secretRequests(env.requests.Requests()[before:]), "admissions in steady state called the API")
}

// namespaceObject matches requests on Namespace objects themselves.
var namespaceObject = regexp.MustCompile(`^/api/v1/namespaces(/[^/]+)?$`)

// secretRequests returns the non-watch requests on Secrets and Namespaces,
// what an admission could read.
func secretRequests(reqs []testbed.Request) []string {
	var out []string
	for _, r := range reqs {
		if (strings.Contains(r.URL.Path, "/secrets") || namespaceObject.MatchString(r.URL.Path)) && r.URL.Query().Get("watch") != "true" {
			out = append(out, r.Method+" "+r.URL.String())
		}
	}
	return out
}

// regcred caches only the Secrets it manages (and those of its own
// namespace), never every Secret of the cluster: each list or watch of
// Secrets is label-selected, name-selected or limited to its namespace.
func TestOnlyManagedSecretsAreCached(t *testing.T) {
	var lists []string
	for _, r := range env.requests.Requests() {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/secrets") {
			continue
		}
		lists = append(lists, r.URL.String())
		q := r.URL.Query()
		ownNamespace := strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/"+regcredNamespace+"/")
		labelled := q.Get("labelSelector") == "app.kubernetes.io/managed-by=regcred"
		named := strings.HasPrefix(q.Get("fieldSelector"), "metadata.name=")
		assert.True(t, ownNamespace || labelled || named, "unselected list or watch of Secrets: %s", r.URL)
	}
	assert.NotEmpty(t, lists, "regcred lists Secrets somewhere")
	t.Logf("lists and watches of Secrets: %q", lists)
}
