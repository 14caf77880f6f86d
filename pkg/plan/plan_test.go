package plan

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
)

const testConfig = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: hub, type: docker, url: docker.io/myorg, username: {value: u}, password: {value: p}}
- {name: quay, type: quay, url: quay.io, username: {value: u}, password: {value: p}}
- {name: harbor, type: other, url: harbor.example.com, username: {value: u}, password: {value: p}}
- {name: harbor-a, type: other, url: harbor.example.com/team-a, username: {value: u}, password: {value: p}}
- {name: admin, type: other, url: admin.example.com, pullSecret: {mode: image-pull-secret, name: admin-pull}}
- {name: shared-a, type: other, url: a.shared.example.com, pullSecret: {mode: image-pull-secret, name: shared-pull}}
- {name: shared-b, type: other, url: b.shared.example.com, pullSecret: {mode: image-pull-secret, name: shared-pull}}
- {name: prod-only, type: other, url: prod.example.com, username: {value: u}, password: {value: p}, clusters: {mode: inject-only, names: [prod]}}
- {name: not-dev, type: other, url: notdev.example.com, username: {value: u}, password: {value: p}, clusters: {names: [dev]}}
- {name: team-a, type: other, url: team-a.example.com, username: {value: u}, password: {value: p}, namespaceSelector: {matchLabels: {team: a}}}
- {name: by-name, type: other, url: byname.example.com, username: {value: u}, password: {value: p}, namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [app]}]}}
- {name: local, type: other, url: "localhost:5000", username: {value: u}, password: {value: p}}
- {name: ecr-team, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/team, ecr: {auth: iam-role}}
- {name: globbed, type: other, url: "*.globbed.example.com", username: {value: u}, password: {value: p}}
- {name: globbed-exact, type: other, url: registry.globbed.example.com, username: {value: u}, password: {value: p}}
`

func testSet(t *testing.T) *registries.Set {
	t.Helper()
	set, err := registries.Load(t.Context(), []byte(testConfig), registries.Options{ClusterName: "dev", StoredIn: config.InSecret,
		Types: registrytype.Builtin(registrytype.Deps{ECR: ecr.NewMinter(ecr.Options{})})})
	require.NoError(t, err)
	return set
}

var excluded = Exclusions{"kube-system": true, "regcred": true, "monitoring": true}

func ns(name string, labels ...string) Namespace {
	l := map[string]string{"kubernetes.io/metadata.name": name}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return Namespace{Name: name, Labels: l}
}

// want is the expected decision for one image: its registry, reason and
// whether the Pod will carry the secret.
type want struct {
	registry string
	reason   Reason
	served   bool
}

func TestForPod(t *testing.T) {
	set := testSet(t)
	app := ns("app")
	for _, tc := range []struct {
		name    string
		pod     Pod
		ns      Namespace
		skipped Reason
		images  []want
		add     []string
		// ensure are the secrets the Pod names already that regcred must
		// make sure exist.
		ensure []string
	}{
		// Matching.
		{name: "docker hub org", pod: Pod{Images: []string{"myorg/app:1"}}, ns: app,
			images: []want{{"hub", Injected, true}}, add: []string{"regcred-hub"}},
		{name: "docker hub alias index", pod: Pod{Images: []string{"index.docker.io/myorg/app"}}, ns: app,
			images: []want{{"hub", Injected, true}}, add: []string{"regcred-hub"}},
		{name: "docker hub alias registry-1", pod: Pod{Images: []string{"registry-1.docker.io/myorg/app"}}, ns: app,
			images: []want{{"hub", Injected, true}}, add: []string{"regcred-hub"}},
		{name: "docker hub outside the org", pod: Pod{Images: []string{"nginx"}}, ns: app,
			images: []want{{"", NoRegistry, false}}},
		{name: "sibling of the org", pod: Pod{Images: []string{"myorgx/app"}}, ns: app,
			images: []want{{"", NoRegistry, false}}},
		{name: "public image", pod: Pod{Images: []string{"ghcr.io/x/y:1"}}, ns: app,
			images: []want{{"", NoRegistry, false}}},
		{name: "longest prefix wins", pod: Pod{Images: []string{"harbor.example.com/team-a/app"}}, ns: app,
			images: []want{{"harbor-a", Injected, true}}, add: []string{"regcred-harbor-a"}},
		{name: "host registry beside a prefix", pod: Pod{Images: []string{"harbor.example.com/team-b/app"}}, ns: app,
			images: []want{{"harbor", Injected, true}}, add: []string{"regcred-harbor"}},
		{name: "digest", pod: Pod{Images: []string{"quay.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}, ns: app,
			images: []want{{"quay", Injected, true}}, add: []string{"regcred-quay"}},
		{name: "port is part of the host", pod: Pod{Images: []string{"localhost:5000/a", "localhost:5001/a"}}, ns: app,
			images: []want{{"local", Injected, true}, {"", NoRegistry, false}}, add: []string{"regcred-local"}},
		// Invalid references and letter case.
		{name: "invalid reference", pod: Pod{Images: []string{"UPPER/Case"}}, ns: app,
			images: []want{{"", InvalidReference, false}}},
		{name: "empty tag", pod: Pod{Images: []string{"quay.io/org/app:"}}, ns: app,
			images: []want{{"", InvalidReference, false}}},
		{name: "host in another case", pod: Pod{Images: []string{"Quay.io/org/app"}}, ns: app,
			images: []want{{"", HostCase, false}}},
		{name: "invalid beside valid", pod: Pod{Images: []string{"nginx:", "quay.io/a/b"}}, ns: app,
			images: []want{{"", InvalidReference, false}, {"quay", Injected, true}}, add: []string{"regcred-quay"}},
		// Duplicates and existing imagePullSecrets.
		{name: "two images of one registry", pod: Pod{Images: []string{"quay.io/a/b", "quay.io/c/d"}}, ns: app,
			images: []want{{"quay", Injected, true}, {"quay", SharedSecret, true}}, add: []string{"regcred-quay"}},
		{name: "same image twice", pod: Pod{Images: []string{"quay.io/a/b", "quay.io/a/b"}}, ns: app,
			images: []want{{"quay", Injected, true}, {"quay", SharedSecret, true}}, add: []string{"regcred-quay"}},
		{name: "secret already listed", pod: Pod{Images: []string{"quay.io/a/b"}, PullSecrets: []string{"regcred-quay"}}, ns: app,
			images: []want{{"quay", AlreadyListed, true}}, ensure: []string{"regcred-quay"}},
		{name: "listed by a Pod in a namespace its registry does not serve", pod: Pod{Images: []string{"team-a.example.com/x"}, PullSecrets: []string{"regcred-team-a"}}, ns: app,
			images: []want{{"team-a", AlreadyListed, true}}},
		{name: "listed beside another registry's", pod: Pod{Images: []string{"quay.io/a/b", "myorg/x"}, PullSecrets: []string{"regcred-quay"}}, ns: app,
			images: []want{{"quay", AlreadyListed, true}, {"hub", Injected, true}}, add: []string{"regcred-hub"}, ensure: []string{"regcred-quay"}},
		{name: "other secrets kept, one added", pod: Pod{Images: []string{"quay.io/a/b"}, PullSecrets: []string{"mine"}}, ns: app,
			images: []want{{"quay", Injected, true}}, add: []string{"regcred-quay"}},
		{name: "two registries in image order", pod: Pod{Images: []string{"quay.io/a/b", "myorg/x"}}, ns: app,
			images: []want{{"quay", Injected, true}, {"hub", Injected, true}}, add: []string{"regcred-quay", "regcred-hub"}},
		{name: "two registries share an admin secret", pod: Pod{Images: []string{"a.shared.example.com/x", "b.shared.example.com/y"}}, ns: app,
			images: []want{{"shared-a", Injected, true}, {"shared-b", SharedSecret, true}}, add: []string{"shared-pull"}},
		{name: "listed admin secret serves both", pod: Pod{Images: []string{"a.shared.example.com/x", "b.shared.example.com/y"}, PullSecrets: []string{"shared-pull"}}, ns: app,
			images: []want{{"shared-a", AlreadyListed, true}, {"shared-b", AlreadyListed, true}}},
		// Pull-secret modes.
		{name: "image-pull-secret mode injects the admin's secret", pod: Pod{Images: []string{"admin.example.com/x"}}, ns: app,
			images: []want{{"admin", Injected, true}}, add: []string{"admin-pull"}},
		{name: "registry-credentials mode injects regcred's secret", pod: Pod{Images: []string{"harbor.example.com/x"}}, ns: app,
			images: []want{{"harbor", Injected, true}}, add: []string{"regcred-harbor"}},
		// Cluster policy.
		{name: "inject-only elsewhere", pod: Pod{Images: []string{"prod.example.com/x"}}, ns: app,
			images: []want{{"prod-only", ClusterPolicy, false}}},
		{name: "everywhere except this cluster", pod: Pod{Images: []string{"notdev.example.com/x"}}, ns: app,
			images: []want{{"not-dev", ClusterPolicy, false}}},
		{name: "policy miss beside a hit", pod: Pod{Images: []string{"notdev.example.com/x", "quay.io/a"}}, ns: app,
			images: []want{{"not-dev", ClusterPolicy, false}, {"quay", Injected, true}}, add: []string{"regcred-quay"}},
		// Namespace scoping.
		{name: "selector matches", pod: Pod{Images: []string{"team-a.example.com/x"}}, ns: ns("a1", "team", "a"),
			images: []want{{"team-a", Injected, true}}, add: []string{"regcred-team-a"}},
		{name: "selector does not match", pod: Pod{Images: []string{"team-a.example.com/x"}}, ns: ns("b1", "team", "b"),
			images: []want{{"team-a", NamespaceNotSelected, false}}},
		{name: "selector, no labels", pod: Pod{Images: []string{"team-a.example.com/x"}}, ns: Namespace{Name: "bare"},
			images: []want{{"team-a", NamespaceNotSelected, false}}},
		{name: "labels unknown: scoped registry fails closed", pod: Pod{Images: []string{"team-a.example.com/x"}}, ns: Namespace{Name: "a1", LabelsUnknown: true},
			images: []want{{"team-a", NamespaceUnknown, false}}},
		{name: "labels unknown: unscoped registry still served", pod: Pod{Images: []string{"quay.io/x"}}, ns: Namespace{Name: "a1", LabelsUnknown: true},
			images: []want{{"quay", Injected, true}}, add: []string{"regcred-quay"}},
		{name: "selector by the API server's name label", pod: Pod{Images: []string{"byname.example.com/x"}}, ns: ns("app"),
			images: []want{{"by-name", Injected, true}}, add: []string{"regcred-by-name"}},
		{name: "selector by name, other namespace", pod: Pod{Images: []string{"byname.example.com/x"}}, ns: ns("other"),
			images: []want{{"by-name", NamespaceNotSelected, false}}},
		{name: "listed secret of a scoped registry is kept", pod: Pod{Images: []string{"team-a.example.com/x"}, PullSecrets: []string{"regcred-team-a"}}, ns: ns("b1"),
			images: []want{{"team-a", AlreadyListed, true}}},
		// Exclusions and opt-out labels.
		{name: "kube-system", pod: Pod{Images: []string{"quay.io/x"}}, ns: ns("kube-system"), skipped: NamespaceExcluded},
		{name: "regcred's namespace", pod: Pod{Images: []string{"quay.io/x"}}, ns: ns("regcred"), skipped: NamespaceExcluded},
		{name: "admin-excluded namespace", pod: Pod{Images: []string{"quay.io/x"}}, ns: ns("monitoring"), skipped: NamespaceExcluded},
		{name: "excluded even when labels unknown", pod: Pod{Images: []string{"quay.io/x"}}, ns: Namespace{Name: "monitoring", LabelsUnknown: true}, skipped: NamespaceExcluded},
		{name: "namespace opted out", pod: Pod{Images: []string{"quay.io/x"}}, ns: ns("quiet", LabelInject, "false"), skipped: NamespaceOptedOut},
		{name: "namespace opt-out needs false", pod: Pod{Images: []string{"quay.io/x"}}, ns: ns("loud", LabelInject, "true"),
			images: []want{{"quay", Injected, true}}, add: []string{"regcred-quay"}},
		{name: "Pod opted out", pod: Pod{Images: []string{"quay.io/x"}, Labels: map[string]string{LabelInject: "false"}}, ns: app, skipped: PodOptedOut},
		{name: "Pod label other value", pod: Pod{Images: []string{"quay.io/x"}, Labels: map[string]string{LabelInject: "no"}}, ns: app,
			images: []want{{"quay", Injected, true}}, add: []string{"regcred-quay"}},
		// The repository named exactly like a prefix: the exact variant,
		// which serves the registry's other images in the Pod too.
		{name: "exact repository gets the exact variant", pod: Pod{Images: []string{"harbor.example.com/team-a:1"}}, ns: app,
			images: []want{{"harbor-a", Injected, true}}, add: []string{"regcred-harbor-a.exact"}},
		{name: "exact and below share the exact variant", pod: Pod{Images: []string{"harbor.example.com/team-a/app", "harbor.example.com/team-a"}}, ns: app,
			images: []want{{"harbor-a", Injected, true}, {"harbor-a", SharedSecret, true}}, add: []string{"regcred-harbor-a.exact"}},
		{name: "below the prefix only: the main secret", pod: Pod{Images: []string{"harbor.example.com/team-a/app"}}, ns: app,
			images: []want{{"harbor-a", Injected, true}}, add: []string{"regcred-harbor-a"}},
		{name: "main secret listed, exact repository pulled", pod: Pod{Images: []string{"harbor.example.com/team-a/app", "harbor.example.com/team-a"}, PullSecrets: []string{"regcred-harbor-a"}}, ns: app,
			images: []want{{"harbor-a", Injected, true}, {"harbor-a", SharedSecret, true}}, add: []string{"regcred-harbor-a.exact"}, ensure: []string{"regcred-harbor-a"}},
		{name: "ECR repository prefix, exact", pod: Pod{Images: []string{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team"}}, ns: app,
			images: []want{{"ecr-team", Injected, true}}, add: []string{"regcred-ecr-team.exact"}},
		{name: "ECR sibling of the prefix", pod: Pod{Images: []string{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/teams/app"}}, ns: app,
			images: []want{{"", NoRegistry, false}}},
		// Globs: an exact host wins over a glob.
		{name: "glob host", pod: Pod{Images: []string{"eu.globbed.example.com/app"}}, ns: app,
			images: []want{{"globbed", Injected, true}}, add: []string{"regcred-globbed"}},
		{name: "exact host beside a glob", pod: Pod{Images: []string{"registry.globbed.example.com/app"}}, ns: app,
			images: []want{{"globbed-exact", Injected, true}}, add: []string{"regcred-globbed-exact"}},
		{name: "glob matches one label only", pod: Pod{Images: []string{"a.b.globbed.example.com/app"}}, ns: app,
			images: []want{{"", NoRegistry, false}}},
		// Degenerate Pods.
		{name: "no images", pod: Pod{}, ns: app},
		{name: "only public images", pod: Pod{Images: []string{"busybox", "registry.k8s.io/pause:3.10"}}, ns: app,
			images: []want{{"", NoRegistry, false}, {"", NoRegistry, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ForPod(set, tc.pod, tc.ns, excluded)
			assert.Equal(t, tc.skipped, p.Skipped)
			if tc.skipped != "" {
				assert.NotEmpty(t, p.SkipDetail)
				assert.Empty(t, p.Images)
				assert.Empty(t, p.Add)
				return
			}
			require.Len(t, p.Images, len(tc.images))
			for i, w := range tc.images {
				got := p.Images[i]
				name := ""
				if got.Registry != nil {
					name = got.Registry.Name
				}
				assert.Equal(t, w.registry, name, "image %d registry", i)
				assert.Equal(t, w.reason, got.Reason, "image %d reason", i)
				assert.Equal(t, w.served, got.Served, "image %d served", i)
				assert.NotEmpty(t, got.Detail, "image %d has a reason a person can read", i)
				assert.Equal(t, tc.pod.Images[i], got.Image)
			}
			var add []string
			for _, a := range p.Add {
				add = append(add, a.Secret)
				assert.NotNil(t, a.Registry)
			}
			assert.Equal(t, tc.add, add)
			var ensure []string
			for _, a := range p.Ensure {
				ensure = append(ensure, a.Secret)
				assert.NotNil(t, a.Registry)
			}
			assert.Equal(t, tc.ensure, ensure)
		})
	}
}

func TestForNamespace(t *testing.T) {
	set := testSet(t)
	for _, tc := range []struct {
		registry string
		ns       Namespace
		ok       bool
		reason   Reason
	}{
		{"quay", ns("app"), true, ""},
		{"quay", ns("kube-system"), false, NamespaceExcluded},
		{"quay", ns("monitoring"), false, NamespaceExcluded},
		{"quay", ns("quiet", LabelInject, "false"), false, NamespaceOptedOut},
		{"team-a", ns("a1", "team", "a"), true, ""},
		{"team-a", ns("b1"), false, NamespaceNotSelected},
		{"team-a", Namespace{Name: "a1", LabelsUnknown: true}, false, NamespaceUnknown},
		{"not-dev", ns("app"), false, ClusterPolicy},
	} {
		ok, reason := ForNamespace(set.Get(tc.registry), tc.ns, excluded)
		assert.Equal(t, tc.ok, ok, "%s in %s", tc.registry, tc.ns.Name)
		assert.Equal(t, tc.reason, reason, "%s in %s", tc.registry, tc.ns.Name)
	}
}

// The plan and the namespace decision agree: an image is injected exactly
// when its registry's secret belongs in the namespace.
func TestForPodAgreesWithForNamespace(t *testing.T) {
	set := testSet(t)
	for _, n := range []Namespace{ns("app"), ns("a1", "team", "a"), ns("kube-system"), ns("quiet", LabelInject, "false"), {Name: "x", LabelsUnknown: true}} {
		for _, r := range set.Registries {
			host := strings.ReplaceAll(r.Location.Host, "*", "x")
			img := host + "/" + r.Location.Prefix + "/img"
			if r.Location.Prefix == "" {
				img = host + "/img"
			}
			p := ForPod(set, Pod{Images: []string{img}}, n, excluded)
			ok, _ := ForNamespace(r, n, excluded)
			assert.Equal(t, ok, len(p.Add) == 1, "%s in %s", r.Name, n.Name)
		}
	}
}
