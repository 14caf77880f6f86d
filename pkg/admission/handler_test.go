package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
	"github.com/regcred/regcred/pkg/secretstore"
)

const testConfig = `
apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- name: hub
  type: docker
  url: docker.io/myorg
  username: {value: myorg}
  password: {value: hub-token}
- name: quay
  type: quay
  url: quay.io
  username: {value: "org+robot"}
  password: {value: quay-token}
- name: harbor
  type: other
  url: harbor.example.com:8443/team-a
  pullSecret: {mode: image-pull-secret, name: harbor-pull}
- name: sandbox-only
  type: other
  url: sandbox.example.com
  username: {value: u}
  password: {value: p}
  clusters: {mode: inject-only, names: [sandbox]}
- name: not-here
  type: other
  url: elsewhere.example.com
  username: {value: u}
  password: {value: p}
  clusters: {names: [prod]}
`

type fakeStore struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error
}

func (f *fakeStore) Apply(ctx context.Context, ns string, w *pullsecret.Want, dryRun bool) (secretstore.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s/%s dryRun=%t", ns, w.Name, dryRun))
	if err := ctx.Err(); err != nil {
		return "", err // as an API call would fail
	}
	if err := f.fail[w.Registry]; err != nil {
		return "", err
	}
	if dryRun {
		return secretstore.WouldCreate, nil
	}
	return secretstore.Created, nil
}

type fakePresence map[string]bool

func (f fakePresence) Exists(ns, name string) (bool, bool) { return f[ns+"/"+name], true }

type countingRecorder struct {
	mu       sync.Mutex
	outcomes map[Outcome]int
}

func (c *countingRecorder) Admission(o Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outcomes == nil {
		c.outcomes = map[Outcome]int{}
	}
	c.outcomes[o]++
}
func (c *countingRecorder) Injected(string)                           {}
func (c *countingRecorder) SecretEnsured(string, secretstore.Outcome) {}
func (c *countingRecorder) Unserved(plan.Reason)                      {}

func testSet(t testing.TB) *registries.Set {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig))
	require.NoError(t, err)
	set, err := registries.Build(context.Background(), cfg, registries.Options{ClusterName: "prod", StoredIn: config.InSecret})
	require.NoError(t, err)
	return set
}

type fixture struct {
	h       *Handler
	ensurer *fakeStore
	retries []string
	// retryHosts are the hosts each retry asked for.
	retryHosts [][]string
	metrics    *countingRecorder
}

func newFixture(t testing.TB) *fixture {
	set := testSet(t)
	f := &fixture{ensurer: &fakeStore{}, metrics: &countingRecorder{}}
	f.h = &Handler{
		Registries: func() *registries.Set { return set },
		Secrets:    f.ensurer,
		Presence:   fakePresence{"app/harbor-pull": true},
		Retry: func(ns, reg string, hosts []string) {
			f.retries = append(f.retries, ns+"/"+reg)
			f.retryHosts = append(f.retryHosts, hosts)
		},
		Exclusions: plan.Exclusions{"kube-system": true, "regcred": true},
		Metrics:    f.metrics,
	}
	return f
}

func TestHandle(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ns       string
		pod      string
		dryRun   bool
		patch    string
		warnings []string
		ensured  []string
		outcome  Outcome
	}{{
		name:    "first secret creates the list",
		ns:      "app",
		pod:     `{"metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"a","image":"quay.io/org/app:1"}]}}`,
		patch:   `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-quay"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-quay=quay"}}]`,
		ensured: []string{"app/regcred-quay dryRun=false"},
		outcome: Patched,
	}, {
		name:  "existing secrets are kept in order and never duplicated",
		ns:    "app",
		pod:   `{"metadata":{"name":"p","annotations":{"a":"b"}},"spec":{"imagePullSecrets":[{"name":"own"},{"name":"regcred-quay"}],"containers":[{"image":"quay.io/org/app"},{"image":"myorg/api"},{"image":"docker.io/myorg/worker"}]}}`,
		patch: `[{"op":"add","path":"/spec/imagePullSecrets/-","value":{"name":"regcred-hub"}},{"op":"add","path":"/metadata/annotations/regcred.io~1injected","value":"regcred-hub=hub"}]`,
		// regcred-quay, which the Pod names already, is made too.
		ensured: []string{"app/regcred-hub dryRun=false", "app/regcred-quay dryRun=false"},
		outcome: Patched,
	}, {
		name:    "init and ephemeral containers count",
		ns:      "app",
		pod:     `{"metadata":{"name":"p"},"spec":{"initContainers":[{"image":"myorg/init"}],"containers":[{"image":"nginx"}],"ephemeralContainers":[{"image":"quay.io/debug/tools"}]}}`,
		patch:   `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-hub"},{"name":"regcred-quay"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-hub=hub,regcred-quay=quay"}}]`,
		ensured: []string{"app/regcred-hub dryRun=false", "app/regcred-quay dryRun=false"},
		outcome: Patched,
	}, {
		// The kubelet pulls an image volume's reference with the Pod's
		// imagePullSecrets, as a container's image: it is served, after
		// the containers, and named by its reference when it is not.
		name:     "image volumes count",
		ns:       "app",
		pod:      `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"nginx"}],"volumes":[{"name":"cm","configMap":{"name":"c"}},{"name":"data","image":{"reference":"quay.io/org/data:1","pullPolicy":"IfNotPresent"}},{"name":"model","image":{"reference":"Quay.io/org/model:1"}}]}}`,
		patch:    `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-quay"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-quay=quay","regcred.io/not-injected":"Quay.io/org/model:1=host-case"}}]`,
		warnings: []string{`regcred: image "Quay.io/org/model:1" names registry host "Quay.io" in another letter case than registry "quay" (quay.io); the kubelet matches credentials case-sensitively, so nothing was injected: write the host in lower case`},
		ensured:  []string{"app/regcred-quay dryRun=false"},
		outcome:  Patched,
	}, {
		name:    "an image volume alone",
		ns:      "app",
		pod:     `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"nginx"}],"volumes":[{"name":"data","image":{"reference":"myorg/data:1"}}]}}`,
		patch:   `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-hub"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-hub=hub"}}]`,
		ensured: []string{"app/regcred-hub dryRun=false"},
		outcome: Patched,
	}, {
		// A Pod that names regcred's secret already (copied from another
		// Pod, or its ServiceAccount's) in a namespace that has none yet:
		// the secret is made, and nothing appended.
		name:    "a secret the Pod names already is made",
		ns:      "fresh",
		pod:     `{"metadata":{"name":"p"},"spec":{"imagePullSecrets":[{"name":"regcred-quay"}],"containers":[{"image":"quay.io/org/app"}]}}`,
		ensured: []string{"fresh/regcred-quay dryRun=false"},
		outcome: Unchanged,
	}, {
		name:    "public images only",
		ns:      "app",
		pod:     `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"nginx"},{"image":"ghcr.io/x/y"}]}}`,
		outcome: Unchanged,
	}, {
		name:    "cluster policy excludes this cluster",
		ns:      "app",
		pod:     `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"sandbox.example.com/a"},{"image":"elsewhere.example.com/b"}]}}`,
		patch:   `[{"op":"add","path":"/metadata/annotations","value":{"regcred.io/not-injected":"sandbox.example.com/a=cluster-policy(sandbox-only), elsewhere.example.com/b=cluster-policy(not-here)"}}]`,
		outcome: Unchanged,
	}, {
		name:    "image-pull-secret mode injects the named secret",
		ns:      "app",
		pod:     `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"harbor.example.com:8443/team-a/app"}]}}`,
		patch:   `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"harbor-pull"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"harbor-pull=harbor"}}]`,
		outcome: Patched,
	}, {
		// kubectl create secret docker-registry --docker-server=<the URL>
		// writes harbor.example.com:8443/team-a, which serves the
		// repository named like the prefix too: no self-check warning.
		name:    "image-pull-secret mode serves the repository named like its prefix",
		ns:      "app",
		pod:     `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"harbor.example.com:8443/team-a:1"}]}}`,
		patch:   `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"harbor-pull"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"harbor-pull=harbor"}}]`,
		outcome: Patched,
	}, {
		name:     "image-pull-secret mode warns when the secret is missing",
		ns:       "other",
		pod:      `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"harbor.example.com:8443/team-a/app"}]}}`,
		patch:    `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"harbor-pull"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"harbor-pull=harbor"}}]`,
		warnings: []string{`regcred: image pull secret "harbor-pull" for registry "harbor" does not exist in namespace "other"; create it (kubectl create secret docker-registry harbor-pull ...) or the image may fail to pull`},
		outcome:  Patched,
	}, {
		name:    "dry run gets the same patch",
		ns:      "app",
		pod:     `{"metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"a","image":"quay.io/org/app:1"}]}}`,
		dryRun:  true,
		patch:   `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-quay"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-quay=quay"}}]`,
		ensured: []string{"app/regcred-quay dryRun=true"},
		outcome: Patched,
	}, {
		name:    "kube-system is left alone",
		ns:      "kube-system",
		pod:     `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`,
		outcome: Skipped,
	}, {
		name:    "regcred's namespace is left alone",
		ns:      "regcred",
		pod:     `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`,
		outcome: Skipped,
	}, {
		name:    "opted-out Pod",
		ns:      "app",
		pod:     `{"metadata":{"name":"p","labels":{"regcred.io/inject":"false"}},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`,
		outcome: Skipped,
	}, {
		name:     "host in another letter case is explained",
		ns:       "app",
		pod:      `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"Quay.io/org/app"}]}}`,
		patch:    `[{"op":"add","path":"/metadata/annotations","value":{"regcred.io/not-injected":"Quay.io/org/app=host-case"}}]`,
		warnings: []string{`regcred: image "Quay.io/org/app" names registry host "Quay.io" in another letter case than registry "quay" (quay.io); the kubelet matches credentials case-sensitively, so nothing was injected: write the host in lower case`},
		outcome:  Unchanged,
	}, {
		name:     "undecodable Pod is admitted",
		ns:       "app",
		pod:      `{"spec":{"containers":"nope"}}`,
		warnings: []string{"regcred could not read this Pod; no pull secrets injected"},
		outcome:  FailedOpen,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			req := podReview(tc.ns, tc.pod)
			req.dryRun = tc.dryRun
			a := admit(t, f.h, req)
			assert.True(t, a.allowed)
			assert.Equal(t, tc.patch, a.patch)
			assert.Equal(t, tc.warnings, a.warnings)
			assert.Equal(t, tc.ensured, f.ensurer.calls)
			assert.Equal(t, map[Outcome]int{tc.outcome: 1}, f.metrics.outcomes)
		})
	}
}

func TestHandleFailsOpen(t *testing.T) {
	f := newFixture(t)
	f.ensurer.fail = map[string]error{
		"quay": errors.New("connection refused"),
		"hub":  fmt.Errorf("secret app/regcred-hub: %w", secretstore.ErrNotManaged),
	}
	a := admit(t, f.h, podReview("app", `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"},{"image":"myorg/app"}]}}`))
	assert.True(t, a.allowed)
	// The quay secret is injected by name all the same and retried; the hub
	// one belongs to someone else and is not injected.
	assert.Equal(t, `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-quay"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-quay=quay","regcred.io/not-injected":"myorg/app=not-carried(hub)"}}]`, a.patch)
	assert.Equal(t, []string{
		`regcred: pull secret "regcred-quay" for registry "quay" is not ready yet (see regcred's log); retrying in the background`,
		`regcred: a Secret named "regcred-hub" exists in namespace "app" and is not regcred's (it lacks regcred's labels or is not of type kubernetes.io/dockerconfigjson); regcred never overwrites it, so registry "hub"'s credentials were not injected: rename or delete that Secret (regcred looks again within a minute)`,
	}, a.warnings)
	assert.Equal(t, []string{"app/regcred-quay"}, f.retries)
	assert.Equal(t, [][]string{nil}, f.retryHosts, "quay's credential serves every host")
	assert.Equal(t, map[Outcome]int{FailedOpen: 1}, f.metrics.outcomes)
}

// A secret of regcred's that the Pod names already and that cannot be
// made is retried, said, and counted as failing open, as one injected.
func TestHandleFailsOpenForASecretThePodNames(t *testing.T) {
	f := newFixture(t)
	f.ensurer.fail = map[string]error{"quay": errors.New("connection refused")}
	a := admit(t, f.h, podReview("app", `{"metadata":{"name":"p"},"spec":{"imagePullSecrets":[{"name":"regcred-quay"}],"containers":[{"image":"quay.io/org/app"}]}}`))
	assert.True(t, a.allowed)
	assert.Empty(t, a.patch, "named already: nothing to append")
	assert.Equal(t, []string{`regcred: pull secret "regcred-quay" for registry "quay" is not ready yet (see regcred's log); retrying in the background`}, a.warnings)
	assert.Equal(t, []string{"app/regcred-quay"}, f.retries)
	assert.Equal(t, map[Outcome]int{FailedOpen: 1}, f.metrics.outcomes)
}

type downECR struct{}

func (downECR) GetAuthorizationToken(context.Context, *awsecr.GetAuthorizationTokenInput, ...func(*awsecr.Options)) (*awsecr.GetAuthorizationTokenOutput, error) {
	return nil, errors.New("throttled")
}

// A glob ECR registry's secret that cannot be made is retried for the
// image hosts the Pod pulls from: its token depends on the host.
func TestHandleRetriesAGlobECRSecretWithItsHosts(t *testing.T) {
	minter := ecr.NewMinter(ecr.Options{Budget: time.Millisecond,
		NewAPI: func(context.Context, ecr.Key, ecr.AccessKey) (ecr.TokenAPI, error) { return downECR{}, nil }})
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: ecr, type: ecr, url: '*.dkr.ecr.*.amazonaws.com', ecr: {auth: iam-role}}
`), registries.Options{StoredIn: config.InSecret, Types: registrytype.Builtin(registrytype.Deps{ECR: minter})})
	require.NoError(t, err)
	f := newFixture(t)
	f.h.Registries = func() *registries.Set { return set }
	a := admit(t, f.h, podReview("app", `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"}]}}`))
	assert.True(t, a.allowed)
	assert.Equal(t, []string{"app/regcred-ecr"}, f.retries)
	assert.Equal(t, [][]string{{"123456789012.dkr.ecr.eu-west-1.amazonaws.com"}}, f.retryHosts)
}

func TestHandleIgnoresOtherRequests(t *testing.T) {
	f := newFixture(t)
	pod := `{"spec":{"containers":[{"image":"quay.io/org/app"}]}}`
	update := podReview("app", pod)
	update.operation = "UPDATE"
	deployment := podReview("app", pod)
	deployment.group, deployment.kind = "apps", "Deployment"
	status := podReview("app", pod)
	status.subRes = "status"
	for _, r := range []testReview{update, deployment, status} {
		a := admit(t, f.h, r)
		assert.True(t, a.allowed)
		assert.Empty(t, a.patch)
	}
	assert.Equal(t, map[Outcome]int{Skipped: 3}, f.metrics.outcomes)
	assert.Empty(t, f.ensurer.calls)
}

func TestHandleRecoversFromPanics(t *testing.T) {
	f := newFixture(t)
	f.h.Registries = func() *registries.Set { panic("boom") }
	a := admit(t, f.h, podReview("app", `{"spec":{"containers":[{"image":"nginx"}]}}`))
	assert.True(t, a.allowed)
	assert.Equal(t, "uid-1", a.uid)
	assert.Equal(t, []string{"regcred failed internally; Pod admitted without injected pull secrets"}, a.warnings)
	assert.Equal(t, map[Outcome]int{FailedOpen: 1}, f.metrics.outcomes)
}

func FuzzHandle(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"p"},"spec":{"imagePullSecrets":[{"name":"own"}],"containers":[{"image":"quay.io/org/app"},{"image":"myorg/app"}]}}`))
	f.Add([]byte(`{"spec":{"containers":[{"image":"harbor.example.com:8443/team-a/x"}],"initContainers":[{"image":"Quay.io/a"}]}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"spec":{"containers":[{"image":"nginx"}],"volumes":[{"name":"v","image":{"reference":"quay.io/org/data:1"}},{"name":"w","image":{"reference":"harbor.example.com:8443/team-a"}}]}}`))
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // not a review the API server sends: FuzzServeHTTP
		}
		a := admit(t, fx.h, podReview("app", string(raw)))
		if !a.allowed {
			t.Fatal("a Pod was denied")
		}
		if a.patch == "" {
			return
		}
		// The patch applies to the Pod it was made for, and the result
		// names no pull secret twice.
		ops := []byte(a.patch)
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatal(err)
		}
		patched, err := patch.Apply(raw)
		if err != nil {
			t.Fatalf("patch %s does not apply to %s: %v", ops, raw, err)
		}
		pod, err := decodePod(patched)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, s := range pod.Spec.ImagePullSecrets {
			if seen[s.Name] && s.Name != "" {
				name := s.Name
				orig, _ := decodePod(raw)
				dupBefore := 0
				for _, o := range orig.Spec.ImagePullSecrets {
					if o.Name == name {
						dupBefore++
					}
				}
				if dupBefore < 2 {
					t.Fatalf("%q injected twice: %s", name, patched)
				}
			}
			seen[s.Name] = true
		}
	})
}

type fakeNamespaces map[string]map[string]string

func (f fakeNamespaces) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	l, ok := f[name]
	if !ok {
		return nil, errors.New("namespace not found")
	}
	return l, nil
}

func TestHandleNamespaceScoping(t *testing.T) {
	cfg, err := config.Parse([]byte(`
apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: quay, type: quay, url: quay.io, username: {value: u}, password: {value: p}, namespaceSelector: {matchLabels: {team: a}}}
- {name: hub, type: docker, url: docker.io, username: {value: u}, password: {value: p}}
`))
	require.NoError(t, err)
	set, err := registries.Build(t.Context(), cfg, registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	f := newFixture(t)
	f.h.Registries = func() *registries.Set { return set }
	f.h.Namespaces = fakeNamespaces{"team-a": {"team": "a"}, "team-b": {"team": "b"}}
	pod := `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"},{"image":"nginx"}]}}`

	a := admit(t, f.h, podReview("team-a", pod))
	assert.Contains(t, a.patch, `[{"name":"regcred-quay"},{"name":"regcred-hub"}]`)

	a = admit(t, f.h, podReview("team-b", pod))
	assert.Contains(t, a.patch, `[{"name":"regcred-hub"}]`, "out of scope: no quay secret")
	assert.Equal(t, []string{"team-a/regcred-quay dryRun=false", "team-a/regcred-hub dryRun=false", "team-b/regcred-hub dryRun=false"}, f.ensurer.calls, "no quay secret is made in team-b")

	a = admit(t, f.h, podReview("unknown", pod))
	assert.Contains(t, a.patch, `[{"name":"regcred-hub"}]`)
	assert.Equal(t, []string{`regcred: cannot tell whether registry "quay" serves namespace "unknown" (its labels could not be read); its credentials were not injected`}, a.warnings, "when in doubt, a scoped registry injects nothing")
}

func TestHandleNamespaceOptOut(t *testing.T) {
	f := newFixture(t)
	f.h.Namespaces = fakeNamespaces{"quiet": {plan.LabelInject: "false"}, "app": {}}
	pod := `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`
	a := admit(t, f.h, podReview("quiet", pod))
	assert.True(t, a.allowed)
	assert.Empty(t, a.patch)
	assert.Empty(t, f.ensurer.calls, "no secret in an opted-out namespace")
	a = admit(t, f.h, podReview("app", pod))
	assert.NotEmpty(t, a.patch)
	assert.Equal(t, map[Outcome]int{Skipped: 1, Patched: 1}, f.metrics.outcomes)
}
