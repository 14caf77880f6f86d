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

	"github.com/regcred/regcred/pkg/secretstore"
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
	assert.Empty(t, admissionRequests(env.requests.Requests()[before:]), "no API call at all per admission in steady state, but the leader's own")
}

// admissionRequests returns the requests that are not the leader's own
// work (lease renewals, events, the status ConfigMap, the batches of index
// entries of secrets it rewrote for other tests) nor watches: what an
// admission could have made. An admission writes an index entry only with
// the Secret it wrote, which secretRequests sees.
func admissionRequests(reqs []testbed.Request) []string {
	var out []string
	for _, r := range reqs {
		p := r.URL.Path
		if r.URL.Query().Get("watch") == "true" || strings.Contains(p, "/leases") || strings.Contains(p, "/events") ||
			strings.HasSuffix(p, "/configmaps/regcred-status") || strings.HasSuffix(p, "/selfsubjectreviews") ||
			strings.Contains(p, "/configmaps/"+secretstore.ShardPrefix) {
			continue
		}
		out = append(out, r.Method+" "+r.URL.String())
	}
	return out
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

// regcred reads no Secret outside its own namespace: every get, list or
// watch of Secrets it makes is in its namespace, but for the opt-in
// --warn-missing-admin-secrets (on here), which follows the metadata of the
// admin's own pull secrets, one name each.
// The requests seen so far; TestMain checks again once every test has run.
func TestNoSecretIsReadOutsideRegcredsNamespace(t *testing.T) {
	reads, outside := secretReads()
	assert.Empty(t, outside, "reads of Secrets outside regcred's namespace")
	assert.NotEmpty(t, reads, "regcred reads the Secrets of its own namespace (its config's references)")
	t.Logf("reads of Secrets: %q", reads)
}

// secretReads returns regcred's gets, lists and watches of Secrets so
// far, and those of them outside its namespace.
func secretReads() (reads, outside []string) {
	for _, r := range env.requests.Requests() {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/secrets") {
			continue
		}
		reads = append(reads, r.URL.String())
		own := strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/"+regcredNamespace+"/")
		// The metadata only, of one Secret by name: an admin's pull
		// secret a config names (my-pull here, others in later tests).
		field := r.URL.Query().Get("fieldSelector")
		adminSecretMetadata := strings.HasPrefix(field, "metadata.name=") && !strings.Contains(field, ",") &&
			strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadata")
		if !own && !adminSecretMetadata {
			outside = append(outside, r.URL.String()+" (Accept "+r.Header.Get("Accept")+")")
		}
	}
	return reads, outside
}
