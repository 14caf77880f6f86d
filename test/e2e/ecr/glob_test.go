package ecr

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/secretstore"
)

// secretKeys returns the auths keys of a pull secret.
func secretKeys(t *testing.T, ns, name string) []string {
	t.Helper()
	var s corev1.Secret
	require.NoError(t, env.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s))
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	require.NoError(t, json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg))
	var keys []string
	for k := range cfg.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// callsByRegion counts the calls of the config's access key since a time,
// per region of the glob registry's hosts (ap-south-1, eu-central-1; the
// same key serves ecr-keys in us-east-1).
func callsByRegion(since time.Time) map[string]int {
	out := map[string]int{}
	for _, c := range callsSince(since, keyID) {
		if c.Region == "ap-south-1" || c.Region == "eu-central-1" {
			out[c.Region]++
		}
	}
	return out
}

// A glob registry (*.dkr.ecr.*.amazonaws.com) serves every account and
// region its identity can pull from: a token per region, minted when an
// image of that region first needs one, whatever the number of namespaces
// and accounts; each namespace's secret has a key per region its Pods use.
func TestGlobRegistryMintsPerRegion(t *testing.T) {
	env.ecr.SetLifetime(12 * time.Hour)
	start := time.Now()
	startReplica(t, "solo", "ecr-glob")
	cs := clientset(t, nil)
	image := func(host string) string { return host + "/" + env.imageKeys[len(hostKeys)+1:] }
	a, b, c := image(hostGlobA), image(hostGlobB), image(hostGlobC)

	ns1, ns2, ns3 := newNamespace(t), newNamespace(t), newNamespace(t)
	p1 := createPod(t, cs, ns1, a, c)
	p2 := createPod(t, cs, ns2, b)
	p3 := createPod(t, cs, ns3, a, b)
	for _, p := range []*corev1.Pod{p1, p2, p3} {
		assert.Equal(t, []string{"regcred-ecr-any"}, secretNames(p))
	}
	for _, pi := range []struct {
		p      *corev1.Pod
		images []string
	}{{p1, []string{a, c}}, {p2, []string{b}}, {p3, []string{a, b}}} {
		for _, img := range pi.images {
			assert.NoError(t, pull(t.Context(), t, pi.p, img), "%s pulls %s", pi.p.Namespace, img)
		}
	}
	assert.Equal(t, []string{"*.dkr.ecr.ap-south-1.amazonaws.com", "*.dkr.ecr.eu-central-1.amazonaws.com"}, secretKeys(t, ns1, "regcred-ecr-any"))
	assert.Equal(t, []string{"*.dkr.ecr.ap-south-1.amazonaws.com"}, secretKeys(t, ns2, "regcred-ecr-any"), "a key for the regions its Pods use")
	assert.Equal(t, map[string]int{"ap-south-1": 1, "eu-central-1": 1}, callsByRegion(start), "one token per region, whatever the accounts and namespaces")

	// A Pod of another region in ns2: its secret gains that region's key.
	p := createPod(t, cs, ns2, c)
	assert.Equal(t, []string{"*.dkr.ecr.ap-south-1.amazonaws.com", "*.dkr.ecr.eu-central-1.amazonaws.com"}, secretKeys(t, ns2, "regcred-ecr-any"))
	assert.NoError(t, pull(t.Context(), t, p, c))
	assert.NoError(t, pull(t.Context(), t, p2, b), "the region it had still pulls")
	assert.Equal(t, map[string]int{"ap-south-1": 1, "eu-central-1": 1}, callsByRegion(start), "the token of a region is minted once")
}

// Short-lived tokens: a refresh calls ECR once per region, not once per
// namespace, and every namespace's secret gets the new tokens.
func TestGlobRegistryRefreshesPerRegion(t *testing.T) {
	const life = 4 * time.Second
	env.ecr.SetLifetime(life)
	startReplica(t, "solo", "ecr-glob-refresh")
	cs := clientset(t, nil)
	image := func(host string) string { return host + "/" + env.imageKeys[len(hostKeys)+1:] }
	a, c := image(hostGlobA), image(hostGlobC)
	var pods []*corev1.Pod
	for range 4 {
		pods = append(pods, createPod(t, cs, newNamespace(t), a, c))
	}
	start := time.Now()
	time.Sleep(3 * life)
	calls := callsByRegion(start)
	// A refresh comes at half a token's life less a jitter of up to a
	// tenth of it: as often as every 0.4 of a life.
	cycles := int(3*life/(life*4/10)) + 1
	t.Logf("calls per region over %s with %s tokens: %v", 3*life, life, calls)
	for _, region := range []string{"ap-south-1", "eu-central-1"} {
		assert.GreaterOrEqual(t, calls[region], 3, "%s refreshed", region)
		assert.LessOrEqual(t, calls[region], cycles, "%s: once per refresh, not once per namespace (4 here)", region)
	}
	for _, p := range pods {
		assert.NoError(t, pull(t.Context(), t, p, a))
		assert.NoError(t, pull(t.Context(), t, p, c))
	}
}

// admit sends the review of a Pod of images in ns straight to a replica's
// webhook, as the API server would, and returns its answer.
func admit(t *testing.T, r *replica, ns string, images ...string) *admissionv1.AdmissionResponse {
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('a'+i)), Image: img})
	}
	raw, err := json.Marshal(p)
	if !assert.NoError(t, err) {
		return nil
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID(ns), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw}},
	})
	if !assert.NoError(t, err) {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.ca.CertPEM)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Post(r.URL, "application/json", bytes.NewReader(body))
	if !assert.NoError(t, err) {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	var review admissionv1.AdmissionReview
	if !assert.NoError(t, json.NewDecoder(resp.Body).Decode(&review)) || !assert.NotNil(t, review.Response) {
		return nil
	}
	return review.Response
}

// Two replicas admit at once the first Pods of new namespaces, each Pod of
// another region (a release of several apps, whose images come from two
// regions): neither replica has seen the other's write, and each writes
// the namespace's secret for its own region. Whichever write lands last,
// every secret serves both regions, and its index entry says so.
func TestGlobRegistryReplicasAddingRegionsAtOnce(t *testing.T) {
	env.ecr.SetLifetime(12 * time.Hour)
	a := startReplica(t, "a", "ecr-glob-race")
	b := startReplica(t, "b", "ecr-glob-race")
	image := func(host string) string { return host + "/" + env.imageKeys[len(hostKeys)+1:] }
	south, central := image(hostGlobA), image(hostGlobC)
	nss := make([]string, 8)
	for i := range nss {
		nss[i] = newNamespace(t)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, ns := range nss {
		for _, r := range []struct {
			rep *replica
			img string
		}{{a, south}, {b, central}} {
			wg.Go(func() {
				<-start
				resp := admit(t, r.rep, ns, r.img)
				if assert.NotNil(t, resp) {
					assert.True(t, resp.Allowed)
					assert.Empty(t, resp.Warnings, "%s: admitted by %s", ns, r.rep.name)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	both := []string{"*.dkr.ecr.ap-south-1.amazonaws.com", "*.dkr.ecr.eu-central-1.amazonaws.com"}
	var index corev1.ConfigMapList
	require.NoError(t, env.client.List(t.Context(), &index, client.InNamespace(namespace), client.MatchingLabels{secretstore.LabelIndex: secretstore.IndexValue}))
	for _, ns := range nss {
		assert.Equal(t, both, secretKeys(t, ns, "regcred-ecr-any"), ns)
		var entry string
		for _, cm := range index.Items {
			if v, ok := cm.Data[ns+".ecr-any"]; ok {
				entry = v
			}
		}
		assert.Contains(t, entry, hostGlobA, "%s: its index entry records both regions", ns)
		assert.Contains(t, entry, hostGlobC, ns)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns}, Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred-ecr-any"}}}}
		assert.NoError(t, pull(t.Context(), t, p, south), ns)
		assert.NoError(t, pull(t.Context(), t, p, central), ns)
	}
}
