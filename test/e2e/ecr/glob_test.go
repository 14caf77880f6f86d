package ecr

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	cycles := int(3*life/(life/2)) + 1
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
