package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
	"github.com/regcred/regcred/test/testbed"
)

// The registries of the table below: every type, every shape of URL.
// Each one's password names it, so that a credential tells its registry.
const tableConfig = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: hub, type: docker, url: docker.io/acme, username: {value: u}, password: {value: pw-hub}}
- {name: hub-all, type: docker, url: docker.io, username: {value: u}, password: {value: pw-hub-all}}
- {name: quay-org, type: quay, url: quay.io/org, username: {value: u}, password: {value: pw-quay-org}}
- {name: quay, type: quay, url: quay.io, username: {value: u}, password: {value: pw-quay}}
- {name: ghcr, type: ghcr, url: ghcr.io/octo, username: {value: u}, password: {value: pw-ghcr}}
- {name: acr, type: azure, url: myregistry.azurecr.io, username: {value: u}, password: {value: pw-acr}}
- {name: acr-any, type: azure, url: "*.azurecr.io", username: {value: u}, password: {value: pw-acr-any}}
- {name: gar, type: artifact-registry, url: europe-west1-docker.pkg.dev/proj, password: {value: '{"type":"service_account","client_email":"gar@p.iam.gserviceaccount.com","private_key":"k"}'}}
- {name: gcr, type: gcr, url: gcr.io, password: {value: '{"type":"service_account","client_email":"gcr@p.iam.gserviceaccount.com","private_key":"k"}'}}
- {name: gcr-any, type: gcr, url: "*.gcr.io", password: {value: '{"type":"service_account","client_email":"gcr-any@p.iam.gserviceaccount.com","private_key":"k"}'}}
- {name: ecr-team, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/team, ecr: {auth: iam-role}}
- {name: ecr-one, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
- {name: ecr-any, type: ecr, url: "*.dkr.ecr.*.amazonaws.com", ecr: {auth: iam-role}}
- {name: harbor, type: other, url: "harbor.example.com:8443", username: {value: u}, password: {value: pw-harbor}}
- {name: harbor-a, type: other, url: "harbor.example.com:8443/team-a", username: {value: u}, password: {value: pw-harbor-a}}
- {name: harbor-a-sub, type: other, url: "harbor.example.com:8443/team-a/sub", username: {value: u}, password: {value: pw-harbor-a-sub}}
- {name: any, type: other, url: "*.example.com", username: {value: u}, password: {value: pw-any}}
- {name: reg-any, type: other, url: "reg-*.example.com", username: {value: u}, password: {value: pw-reg-any}}
- {name: mid, type: other, url: "registry.*.example.com", username: {value: u}, password: {value: pw-mid}}
- {name: port-any, type: other, url: "*.example.com:5000", username: {value: u}, password: {value: pw-port-any}}
- {name: team-any, type: other, url: "*.example.com/team", username: {value: u}, password: {value: pw-team-any}}
- {name: exact, type: other, url: registry.example.com, username: {value: u}, password: {value: pw-exact}}
- {name: local, type: other, url: "localhost:5000", username: {value: u}, password: {value: pw-local}}
- {name: ipv6, type: other, url: "[::1]:5000", username: {value: u}, password: {value: pw-ipv6}}
- {name: v2, type: other, url: "https://quay2.example.org/v2/", username: {value: u}, password: {value: pw-v2}}
`

// fakeECR stands in for ECR: a token per registry, or per region for a
// glob, whose password names it.
func fakeECR() *registrytype.Type {
	t := registrytype.ECR(nil)
	t.NewProvider = func(spec credentials.Spec) (credentials.Provider, error) {
		if spec.Location.Glob() {
			return &perRegion{registry: spec.Registry, glob: spec.Location.Host}, nil
		}
		return credentials.Static{Username: "AWS", Password: "pw-" + spec.Registry}, nil
	}
	return t
}

type perRegion struct{ registry, glob string }

func (p *perRegion) Credential(context.Context) (credentials.Credential, error) {
	return credentials.Credential{}, fmt.Errorf("per host")
}
func (p *perRegion) ForHost(host string) (string, credentials.Provider, error) {
	pattern, h, err := ecr.Pattern(p.glob, host)
	if err != nil {
		return "", nil, err
	}
	return pattern, credentials.Static{Username: "AWS", Password: "pw-" + p.registry + "@" + h.Region}, nil
}
func (p *perRegion) PatternOf(host string) (string, error) {
	pattern, _, err := ecr.Pattern(p.glob, host)
	return pattern, err
}
func (p *perRegion) Sources() []credentials.Expiring { return nil }

// tablePods are the Pods of the table: one image each, then mixes that
// put registries whose keys could shadow each other in one Pod.
var tablePods = [][]string{
	// Docker Hub: its three names, an organisation and its siblings.
	{"nginx"}, {"busybox:1.37"}, {"acme/app"}, {"docker.io/acme/app"}, {"index.docker.io/acme/app"},
	{"registry-1.docker.io/acme/app"}, {"acme-corp/app"}, {"docker.io/library/nginx"},
	// Quay: an organisation, its sibling, the repository named like it.
	{"quay.io/org/app"}, {"quay.io/org2/img"}, {"quay.io/org"}, {"quay.io/orgx"},
	// GitHub, Azure, Google.
	{"ghcr.io/octo/tool"}, {"ghcr.io/other/tool"}, {"myregistry.azurecr.io/app"}, {"other.azurecr.io/app"},
	{"europe-west1-docker.pkg.dev/proj/repo/img"}, {"europe-west1-docker.pkg.dev/proj2/repo/img"},
	{"gcr.io/proj/img"}, {"eu.gcr.io/proj/img"}, {"us.gcr.io/proj/img"},
	// ECR: a repository prefix, its siblings, the repository named like it,
	// the account's other repositories, other accounts and regions (glob).
	{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app"}, {"123456789012.dkr.ecr.eu-west-1.amazonaws.com/teams/app"},
	{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team"}, {"123456789012.dkr.ecr.eu-west-1.amazonaws.com/other"},
	{"999999999999.dkr.ecr.us-east-1.amazonaws.com/app"}, {"999999999999.dkr.ecr.eu-west-1.amazonaws.com/app"},
	{"123456789012.dkr.ecr.ap-south-1.amazonaws.com/app"},
	// A host with ports and nested prefixes.
	{"harbor.example.com:8443/team-a/app"}, {"harbor.example.com:8443/team-ab/app"}, {"harbor.example.com:8443/team-a"},
	{"harbor.example.com:8443/team-a/sub/app"}, {"harbor.example.com:8443/team-a/subway/app"}, {"harbor.example.com:8443/team-a/sub"},
	{"harbor.example.com:8443/team-b/app"}, {"harbor.example.com/app"},
	// Globs beside exact hosts.
	{"foo.example.com/app"}, {"reg-eu.example.com/app"}, {"registry.eu.example.com/app"}, {"foo.example.com:5000/app"},
	{"foo.example.com/team/app"}, {"foo.example.com/teams/app"}, {"registry.example.com/app"}, {"registry.example.com/team/app"},
	{"a.b.example.com/app"},
	// Loopback, IPv6, /v2/ in a registry's URL, public images.
	{"localhost:5000/app"}, {"localhost/app"}, {"[::1]:5000/app"}, {"quay2.example.org/app"}, {"registry.k8s.io/pause:3.10"},
	// The kubelet's limit: a host in another letter case.
	{"Quay.io/org/app"}, {"Harbor.example.com:8443/team-a/app"},
	// Mixes.
	{"harbor.example.com:8443/team-a/app", "harbor.example.com:8443/team-ab/app"},
	{"harbor.example.com:8443/team-a/sub/app", "harbor.example.com:8443/team-a/app", "harbor.example.com:8443/team-b/app"},
	{"harbor.example.com:8443/team-a", "harbor.example.com:8443/team-a/app"},
	{"harbor.example.com:8443/team-a", "harbor.example.com:8443/team-ab/app"},
	{"acme/app", "acme-corp/app"}, {"nginx", "acme/app", "index.docker.io/acme/x"},
	{"registry-1.docker.io/acme/app", "registry-1.docker.io/library/nginx"},
	{"quay.io/org/app", "quay.io/org2/img"}, {"quay.io/org", "quay.io/org2/img"}, {"quay.io/org", "quay.io/org/app"},
	{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/teams/app"},
	{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/teams/app"},
	{"999999999999.dkr.ecr.us-east-1.amazonaws.com/app", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/other"},
	{"999999999999.dkr.ecr.eu-west-1.amazonaws.com/app", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x"},
	{"999999999999.dkr.ecr.us-east-1.amazonaws.com/a", "888888888888.dkr.ecr.ap-south-1.amazonaws.com/b"},
	{"registry.example.com/app", "foo.example.com/app"}, {"reg-eu.example.com/app", "foo.example.com/app"},
	{"foo.example.com/team/app", "foo.example.com/app"}, {"foo.example.com:5000/app", "foo.example.com/app"},
	{"registry.example.com/team/app", "foo.example.com/team/app"}, {"registry.eu.example.com/app", "reg-eu.example.com/app"},
	{"eu.gcr.io/proj/img", "gcr.io/proj/img"}, {"myregistry.azurecr.io/a", "other.azurecr.io/b"},
	{"localhost:5000/app", "localhost/app"}, {"localhost:5000/app", "nginx"},
	{"Quay.io/org/app", "quay.io/org/app"}, {"quay2.example.org/app", "quay.io/org/app"},
	{"nginx", "quay.io/org/app", "ghcr.io/octo/x", "gcr.io/p/i", "harbor.example.com:8443/team-a/app", "registry.k8s.io/pause"},
	{"europe-west1-docker.pkg.dev/proj/repo/img", "europe-west1-docker.pkg.dev/proj2/repo/img", "eu.gcr.io/x/y"},
	{"ghcr.io/octo/tool", "ghcr.io/other/tool"}, {"[::1]:5000/app", "localhost:5000/app"},
}

// For regcred's actual pull secrets, the kubelet's own code tries the
// intended registry's credentials first for every image of every Pod, or
// the case is a limit of the kubelet's key matching and regcred warned at
// admission.
func TestKubeletTriesTheIntendedRegistryFirst(t *testing.T) {
	require.GreaterOrEqual(t, len(tablePods), 80)
	types, err := registrytype.NewTypes(fakeECR(), registrytype.Docker(), registrytype.Azure(), registrytype.ArtifactRegistry(),
		registrytype.GCR(), registrytype.Quay(), registrytype.GHCR(), registrytype.Other())
	require.NoError(t, err)
	set, err := registries.Load(t.Context(), []byte(tableConfig), registries.Options{Types: types, StoredIn: config.InSecret})
	require.NoError(t, err)

	type podCase struct {
		plan     plan.Plan
		warnings []string
		secrets  []corev1.Secret
	}
	cases := make([]podCase, len(tablePods))
	judge := make([]testbed.JudgePod, len(tablePods))
	for i, images := range tablePods {
		pod := plan.Pod{Images: images}
		p := plan.ForPod(set, pod, plan.Namespace{Name: "app"}, plan.Exclusions{"kube-system": true})
		var final []string
		for _, in := range p.Add {
			w, err := in.Registry.Want(t.Context(), registries.Need{Exact: in.Exact, Hosts: in.Hosts})
			require.NoError(t, err)
			final = append(final, in.Secret)
			judge[i].Secrets = append(judge[i].Secrets, testbed.JudgeSecret{Name: in.Secret, DockerConfigJSON: w.Data})
			cases[i].secrets = append(cases[i].secrets, corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: in.Secret, Namespace: "app"},
				Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: w.Data}})
		}
		judge[i].Images = images
		cases[i].plan = p
		for _, d := range p.Images {
			if d.Reason == plan.HostCase || d.Reason == plan.InvalidReference {
				cases[i].warnings = append(cases[i].warnings, d.Detail)
			}
		}
		cases[i].warnings = append(cases[i].warnings, plan.Shadowed(p, plan.KubeletFirst(set, images, final), final)...)
	}
	res, err := testbed.KubeletJudge(t.Context(), judge)
	require.NoError(t, err)

	total, first, warned, ggcrAgrees := 0, 0, 0, 0
	for i, images := range tablePods {
		require.Empty(t, res[i].Error)
		require.Len(t, res[i].Images, len(images))
		for j, img := range images {
			total++
			d := cases[i].plan.Images[j]
			intended := ""
			if d.Served {
				intended = d.Registry.Name
			}
			got := ""
			if creds := res[i].Images[j].Credentials; len(creds) > 0 {
				got = registryOf(creds[0].Password)
			}
			if got == intended {
				first++
				if gg, ok := ggcrRegistry(t, cases[i].secrets, img); ok {
					assert.Equal(t, intended, gg, "go-containerregistry's keychain, pod %d image %s", i, img)
					ggcrAgrees++
				}
				continue
			}
			// A miss must be one regcred warned of at admission.
			assert.True(t, slices.ContainsFunc(cases[i].warnings, func(w string) bool { return strings.Contains(w, fmt.Sprintf("%q", img)) }),
				"pod %d %v: image %s gets %q first, not %q, and regcred did not warn (warnings: %q)", i, images, img, got, intended, cases[i].warnings)
			t.Logf("a kubelet limit, warned of: in Pod %v, image %s gets %q first, not %q", images, img, got, intended)
			warned++
		}
	}
	t.Logf("%d Pods, %d images: the kubelet tries the intended registry first for %d; %d are kubelet limits regcred warned of; go-containerregistry's keychain agrees on %d",
		len(tablePods), total, first, warned, ggcrAgrees)
	assert.GreaterOrEqual(t, float64(first)/float64(total), 0.95)
}

// registryOf tells the registry a password belongs to.
func registryOf(password string) string {
	if strings.HasPrefix(password, "{") {
		var key struct {
			Email string `json:"client_email"`
		}
		if json.Unmarshal([]byte(password), &key) == nil {
			return strings.Split(key.Email, "@")[0]
		}
	}
	reg, _, _ := strings.Cut(strings.TrimPrefix(password, "pw-"), "@")
	return reg
}

// ggcrRegistry is the registry whose credential go-containerregistry's
// keychain resolves for an image; ok is false where it cannot parse it.
func ggcrRegistry(t *testing.T, secrets []corev1.Secret, img string) (string, bool) {
	t.Helper()
	kc, err := kubernetes.NewFromPullSecrets(t.Context(), secrets)
	require.NoError(t, err)
	ref, err := name.ParseReference(img)
	if err != nil {
		return "", false
	}
	auth, err := kc.Resolve(ref.Context())
	require.NoError(t, err)
	cfg, err := auth.Authorization()
	require.NoError(t, err)
	return registryOf(cfg.Password), true
}

// image.Keyring, the pure copy regcred's self-check uses, tries the same
// credentials in the same order as the kubelet, on every case of
// lookupCases.
func TestKeyringIsTheKubelets(t *testing.T) {
	pods := make([]testbed.JudgePod, len(lookupCases))
	for i, c := range lookupCases {
		for _, s := range c.secrets {
			pods[i].Secrets = append(pods[i].Secrets, testbed.JudgeSecret{Name: s.name, DockerConfigJSON: dockerConfigJSON(t, s)})
		}
		pods[i].Images = []string{c.image}
	}
	res, err := testbed.KubeletJudge(t.Context(), pods)
	require.NoError(t, err)
	for i, c := range lookupCases {
		var ring image.Keyring
		for _, s := range c.secrets {
			var keys []string
			for _, e := range s.entries {
				keys = append(keys, e.key)
			}
			ring.Add(s.name, keys)
		}
		creds, ok := ring.Lookup(c.image)
		require.True(t, ok, c.name)
		var got, want []string
		for _, cr := range creds {
			got = append(got, cr.Source+" "+cr.Key)
		}
		for _, cr := range res[i].Images[0].Credentials {
			want = append(want, cr.Secret+" "+cr.Key)
		}
		assert.Equal(t, want, got, c.name)
	}
}
