package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

// selfCheck plans a Pod and returns the self-check's warnings.
func selfCheck(t *testing.T, set *registries.Set, pod Pod) (Plan, []string) {
	t.Helper()
	p := ForPod(set, pod, ns("app"), excluded)
	final := append([]string(nil), pod.PullSecrets...)
	for _, a := range p.Add {
		final = append(final, a.Secret)
	}
	return p, Shadowed(p, KubeletFirst(set, pod.Images, final), final)
}

func TestSelfCheck(t *testing.T) {
	set := testSet(t)
	for _, tc := range []struct {
		name   string
		pod    Pod
		firsts []string // the secret tried first, per image
		warn   []string
	}{
		{name: "a host registry beside a prefix registry", pod: Pod{Images: []string{"harbor.example.com/team-ab/app", "harbor.example.com/team-a/app"}},
			firsts: []string{"regcred-harbor", "regcred-harbor-a"}},
		{name: "the exact repository beside a sibling", pod: Pod{Images: []string{"harbor.example.com/team-a", "harbor.example.com/team-ab/app"}},
			firsts: []string{"regcred-harbor-a.exact", "regcred-harbor-a.exact"},
			warn:   []string{`regcred: image "harbor.example.com/team-ab/app": the kubelet will try secret "regcred-harbor-a.exact" first (registry "harbor-a"), not registry "harbor"'s secret "regcred-harbor"`}},
		// The Pod names the registry's main secret (its ServiceAccount's),
		// and pulls the exact repository too: the kubelet tries the main
		// secret first for the image below the prefix, which holds the
		// same registry's credentials: no warning.
		{name: "the main secret listed beside the exact variant", pod: Pod{Images: []string{"harbor.example.com/team-a/app", "harbor.example.com/team-a"}, PullSecrets: []string{"regcred-harbor-a"}},
			firsts: []string{"regcred-harbor-a", "regcred-harbor-a.exact"}},
		{name: "Docker Hub's three names", pod: Pod{Images: []string{"myorg/app", "index.docker.io/myorg/app", "registry-1.docker.io/myorg/app"}},
			firsts: []string{"regcred-hub", "regcred-hub", "regcred-hub"}},
		{name: "Docker Hub outside the org gets nothing", pod: Pod{Images: []string{"myorg/app", "nginx", "localhost/x"}},
			firsts: []string{"regcred-hub", "", ""}},
		{name: "a glob beside an exact host", pod: Pod{Images: []string{"registry.globbed.example.com/a", "eu.globbed.example.com/b"}},
			firsts: []string{"regcred-globbed-exact", "regcred-globbed"}},
		{name: "a secret the Pod lists itself is not known", pod: Pod{Images: []string{"quay.io/a"}, PullSecrets: []string{"theirs"}},
			firsts: []string{"regcred-quay"}},
		{name: "an admin's secret, as kubectl writes it", pod: Pod{Images: []string{"admin.example.com/x"}},
			firsts: []string{"admin-pull"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, warn := selfCheck(t, set, tc.pod)
			final := append([]string(nil), tc.pod.PullSecrets...)
			for _, a := range p.Add {
				final = append(final, a.Secret)
			}
			firsts := KubeletFirst(set, tc.pod.Images, final)
			require.Len(t, firsts, len(tc.firsts))
			for i, want := range tc.firsts {
				assert.Equal(t, want, firsts[i].Secret, "image %s", tc.pod.Images[i])
			}
			assert.Equal(t, tc.warn, warn)
		})
	}
}

// In a Pod with only a prefix registry's exact variant, the kubelet would
// send its credentials to a sibling repository no registry serves: a
// limit of the kubelet's character-prefix keys, said at admission.
func TestSelfCheckWarnsOfALeak(t *testing.T) {
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: team-a, type: other, url: harbor.example.com/team-a, username: {value: u}, password: {value: p}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	_, warn := selfCheck(t, set, Pod{Images: []string{"harbor.example.com/team-a", "harbor.example.com/team-ab/app"}})
	assert.Equal(t, []string{`regcred: image "harbor.example.com/team-ab/app" is served by no registry, yet the kubelet will try secret "regcred-team-a.exact" (registry "team-a") for it`}, warn)
	_, warn = selfCheck(t, set, Pod{Images: []string{"harbor.example.com/team-a/app", "harbor.example.com/team-ab/app"}})
	assert.Empty(t, warn, "the main secret's key never reaches a sibling")
}

// An admin's secret, keyed as kubectl writes it (the URL, no trailing
// slash), serves the repository named like its prefix without a warning,
// and is a character prefix of siblings: the kubelet tries it first for
// another registry's image there, or for an image no registry serves, and
// the self-check says so.
func TestSelfCheckReadsAnAdminsKeyAsKubectlWritesIt(t *testing.T) {
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: harbor, type: other, url: "harbor.example.com:8443", username: {value: u}, password: {value: p}}
- {name: harbor-a, type: other, url: "harbor.example.com:8443/team-a", pullSecret: {mode: image-pull-secret, name: harbor-pull}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	_, warn := selfCheck(t, set, Pod{Images: []string{"harbor.example.com:8443/team-a:1", "harbor.example.com:8443/team-a/app:1"}})
	assert.Empty(t, warn, "the repository named like the prefix is served")
	_, warn = selfCheck(t, set, Pod{Images: []string{"harbor.example.com:8443/team-a/app:1", "harbor.example.com:8443/team-ab/app:1"}})
	assert.Equal(t, []string{`regcred: image "harbor.example.com:8443/team-ab/app:1": the kubelet will try secret "harbor-pull" first (registry "harbor-a"), not registry "harbor"'s secret "regcred-harbor"`}, warn)

	set, err = registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: harbor-a, type: other, url: "harbor.example.com:8443/team-a", pullSecret: {mode: image-pull-secret, name: harbor-pull}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	_, warn = selfCheck(t, set, Pod{Images: []string{"harbor.example.com:8443/team-a/app:1", "harbor.example.com:8443/team-ab/app:1"}})
	assert.Equal(t, []string{`regcred: image "harbor.example.com:8443/team-ab/app:1" is served by no registry, yet the kubelet will try secret "harbor-pull" (registry "harbor-a") for it`}, warn)
}
