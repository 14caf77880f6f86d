package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
	"github.com/regcred/regcred/test/testbed"
)

// 1. A Pod created through the API is patched, keeping the pull secrets its
// ServiceAccount gave it (copied in by the ServiceAccount admission plugin).
func TestPodCreatedThroughTheAPIIsPatched(t *testing.T) {
	ns := newNamespace(t)
	cs := clientset(t, nil)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		sa, err := cs.CoreV1().ServiceAccounts(ns).Get(t.Context(), "default", metav1.GetOptions{})
		if !assert.NoError(c, err) {
			return
		}
		sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "from-service-account"}}
		_, err = cs.CoreV1().ServiceAccounts(ns).Update(t.Context(), sa, metav1.UpdateOptions{})
		assert.NoError(c, err)
	}, 30*time.Second, 50*time.Millisecond)

	got := createPod(t, cs, ns, pod(env.imageA), metav1.CreateOptions{})
	assert.Equal(t, []string{"from-service-account", "regcred-reg-a"}, secretNames(got))
	assert.Equal(t, "regcred-reg-a=reg-a", got.Annotations[admission.AnnotationInjected])

	s := managedSecret(t, ns, "regcred-reg-a")
	require.NotNil(t, s, "the pull secret was created with the first Pod")
	assert.Equal(t, corev1.SecretTypeDockerConfigJson, s.Type)
	assert.Equal(t, "reg-a", s.Labels[pullsecret.LabelRegistry])

	// A second Pod, with pull secrets of its own (so the ServiceAccount's
	// are not copied), keeps them first and reuses the secret.
	p := pod(env.imageA)
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "own"}, {Name: "regcred-reg-a"}, {Name: "other"}}
	got2 := createPod(t, cs, ns, p, metav1.CreateOptions{})
	assert.Equal(t, []string{"own", "regcred-reg-a", "other"}, secretNames(got2), "never duplicated")
	p = pod(env.imageA)
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "own"}}
	got3 := createPod(t, cs, ns, p, metav1.CreateOptions{})
	assert.Equal(t, []string{"own", "regcred-reg-a"}, secretNames(got3))
	assert.Equal(t, s.ResourceVersion, managedSecret(t, ns, "regcred-reg-a").ResourceVersion)
}

// 2. A Deployment: kube-controller-manager creates the Pod with a
// generateName, and it is patched. The Deployment itself is not touched.
func TestDeploymentPodIsPatched(t *testing.T) {
	ns := newNamespace(t)
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: env.imageA}}},
			},
		},
	}
	require.NoError(t, env.client.Create(t.Context(), d))
	var pods corev1.PodList
	require.Eventually(t, func() bool {
		return env.client.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels(labels)) == nil && len(pods.Items) == 1
	}, 60*time.Second, 100*time.Millisecond, "kube-controller-manager made no Pod")
	p := pods.Items[0]
	assert.True(t, strings.HasPrefix(p.Name, "web-"), "the Pod was named from a generateName: %s", p.Name)
	assert.NotEmpty(t, p.GenerateName, "made by the ReplicaSet controller with a generateName")
	assert.Equal(t, []string{"regcred-reg-a"}, secretNames(&p))
	assert.Equal(t, "regcred-reg-a=reg-a", p.Annotations[admission.AnnotationInjected])
	assert.NoError(t, pull(t, env.regA, &p, env.imageA))

	var after appsv1.Deployment
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKeyFromObject(d), &after))
	assert.Empty(t, after.Spec.Template.Spec.ImagePullSecrets, "workloads are never mutated")
}

// 3. The admitted Pod's imagePullSecrets, resolved as the kubelet resolves
// them, fetch the image's manifest; without them the registry refuses (401).
func TestInjectedCredentialsPull(t *testing.T) {
	ns := newNamespace(t)
	got := createPod(t, clientset(t, nil), ns, pod(env.imageA), metav1.CreateOptions{})
	require.NoError(t, pull(t, env.regA, got, env.imageA))
	assertRefused(t, env.regA, env.imageA)

	// The secret is exactly what kubectl create secret docker-registry writes.
	s := managedSecret(t, ns, "regcred-reg-a")
	require.NotNil(t, s)
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	require.NoError(t, json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg))
	require.Len(t, cfg.Auths, 1)
	a := cfg.Auths[env.regA.Host]
	assert.Equal(t, "alice", a.Username)
	assert.True(t, base64.StdEncoding.EncodeToString([]byte("alice:"+a.Password)) == a.Auth, "auth is the base64 of user:password")
}

// 4. A dry run gets the same patch and writes nothing.
func TestDryRunWritesNothing(t *testing.T) {
	ns := newNamespace(t)
	cs := clientset(t, nil)
	got := createPod(t, cs, ns, pod(env.imageA), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	assert.Equal(t, []string{"regcred-reg-a"}, secretNames(got))
	assert.Nil(t, managedSecret(t, ns, "regcred-reg-a"), "a dry run creates no secret")
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items)

	// Where a Secret of the pull secret's name is not regcred's, the dry
	// run (before any create there) answers as the create does: nothing
	// injected, and why.
	squatted := newNamespace(t)
	require.NoError(t, env.client.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: squatted, Name: "regcred-reg-a"}, Type: corev1.SecretTypeOpaque}))
	dry := createPod(t, cs, squatted, pod(env.imageA), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	created := createPod(t, cs, squatted, pod(env.imageA), metav1.CreateOptions{})
	assert.Empty(t, secretNames(created))
	assert.Equal(t, secretNames(created), secretNames(dry))
	assert.NotEmpty(t, created.Annotations[admission.AnnotationNotInjected])
	assert.Equal(t, created.Annotations[admission.AnnotationNotInjected], dry.Annotations[admission.AnnotationNotInjected])
}

// 5. Two private registries give two secrets, both of which pull; public
// images give none.
func TestOnlyTheRegistriesThePodUses(t *testing.T) {
	ns := newNamespace(t)
	cs := clientset(t, nil)
	got := createPod(t, cs, ns, pod(env.imageA, "registry.k8s.io/pause:3.10", env.imageB), metav1.CreateOptions{})
	assert.Equal(t, []string{"regcred-reg-a", "regcred-reg-b"}, secretNames(got))
	assert.NoError(t, pull(t, env.regA, got, env.imageA))
	assert.NoError(t, pull(t, env.regB, got, env.imageB))
	assertRefused(t, env.regB, env.imageB)

	public := createPod(t, cs, ns, pod("nginx:1.27", "registry.k8s.io/pause:3.10", "ghcr.io/org/tool@sha256:"+strings.Repeat("ab", 32)), metav1.CreateOptions{})
	assert.Empty(t, public.Spec.ImagePullSecrets)
	assert.Empty(t, public.Annotations[admission.AnnotationInjected])

	onlyB := createPod(t, cs, newNamespace(t), pod(env.imageB), metav1.CreateOptions{})
	assert.Equal(t, []string{"regcred-reg-b"}, secretNames(onlyB))
	assert.Nil(t, managedSecret(t, onlyB.Namespace, "regcred-reg-a"), "no secret for a registry the Pod does not use")
}

// 6. image-pull-secret mode injects the admin's named secret, with a warning
// while that secret does not exist in the namespace.
func TestImagePullSecretMode(t *testing.T) {
	restoreConfig(t)
	setConfig(t, config(
		registryConfig("reg-a", env.regA, "alice", "reg-a", ""),
		registryConfig("reg-b", env.regB, "bob", "reg-b", "  pullSecret: {mode: image-pull-secret, name: my-pull}\n"),
	))
	ns := newNamespace(t)
	w := &warnings{}
	cs := clientset(t, w)

	got := createPod(t, cs, ns, pod(env.imageB), metav1.CreateOptions{})
	assert.Equal(t, []string{"my-pull"}, secretNames(got))
	assert.Equal(t, []string{fmt.Sprintf(`regcred: image pull secret "my-pull" for registry "reg-b" does not exist in namespace %q; create it (kubectl create secret docker-registry my-pull ...) or the image may fail to pull`, ns)}, w.Take())
	assert.Nil(t, managedSecret(t, ns, "regcred-reg-b"), "regcred never invents the content of the admin's secret")
	assert.Error(t, pull(t, env.regB, got, env.imageB), "no credentials until the admin creates the secret")
	// Every Pod is told, not only the namespace's first.
	createPod(t, cs, ns, pod(env.imageB), metav1.CreateOptions{})
	assert.Len(t, w.Take(), 1, "the warning again for the next Pod")

	// The admin creates it, as kubectl create secret docker-registry would.
	auth := base64.StdEncoding.EncodeToString([]byte("bob:" + passwords["bob"]))
	require.NoError(t, env.client.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "my-pull", Namespace: ns},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil,
			`{"auths":{%q:{"username":"bob","password":%q,"auth":%q}}}`, env.regB.Host, passwords["bob"], auth)},
	}))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got = createPod(t, cs, ns, pod(env.imageB), metav1.CreateOptions{})
		assert.Equal(c, []string{"my-pull"}, secretNames(got))
		assert.Empty(c, w.Take())
	}, 30*time.Second, 200*time.Millisecond)
	assert.NoError(t, pull(t, env.regB, got, env.imageB))
}

// 7. The per-cluster policy: excluded, nothing is injected; included, it is.
func TestClusterPolicy(t *testing.T) {
	restoreConfig(t)
	ns := newNamespace(t)
	cs := clientset(t, nil)
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"  clusters: {mode: inject-everywhere-except, names: [e2e]}\n", []string{}},
		{"  clusters: {mode: inject-only, names: [prod, staging]}\n", []string{}},
		{"  clusters: {mode: inject-only, names: [prod, e2e]}\n", []string{"regcred-reg-a"}},
		{"  clusters: {mode: inject-everywhere-except, names: [prod]}\n", []string{"regcred-reg-a"}},
	} {
		setConfig(t, config(registryConfig("reg-a", env.regA, "alice", "reg-a", tc.policy)))
		got := createPod(t, cs, ns, pod(env.imageA), metav1.CreateOptions{})
		assert.Equal(t, tc.want, secretNames(got), tc.policy)
		// The Pod itself says why it got nothing.
		if len(tc.want) == 0 {
			assert.Equal(t, env.imageA+"=cluster-policy(reg-a)", got.Annotations["regcred.io/not-injected"], tc.policy)
		} else {
			assert.NotContains(t, got.Annotations, "regcred.io/not-injected", tc.policy)
		}
	}
	// And regcred's log, at info level, once per namespace and registry:
	// two Pods above were left without them.
	line := regexp.MustCompile(`Image left without registry credentials.*"namespace": "` + regexp.QuoteMeta(ns) + `".*"registry": "reg-a", "reason": "cluster-policy"`)
	assert.Len(t, line.FindAllString(env.logs.String(), -1), 1)
}

// 8. A credential change reaches the existing pull secret.
func TestCredentialChangeReachesSecret(t *testing.T) {
	restoreConfig(t)
	ns := newNamespace(t)
	got := createPod(t, clientset(t, nil), ns, pod(env.imageA), metav1.CreateOptions{})
	require.NoError(t, pull(t, env.regA, got, env.imageA))
	before := managedSecret(t, ns, "regcred-reg-a")
	require.NotNil(t, before)

	// The admin rotates to another account of the same registry.
	var creds corev1.Secret
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKey{Namespace: regcredNamespace, Name: credsSecret}, &creds))
	creds.Data["reg-a-carol"] = []byte(passwords["carol"])
	require.NoError(t, env.client.Update(t.Context(), &creds))
	setConfig(t, config(
		registryConfig("reg-a", env.regA, "carol", "reg-a-carol", ""),
		registryConfig("reg-b", env.regB, "bob", "reg-b", ""),
	))
	require.Eventually(t, func() bool {
		s := managedSecret(t, ns, "regcred-reg-a")
		return s != nil && strings.Contains(string(s.Data[corev1.DockerConfigJsonKey]), `"username":"carol"`)
	}, 30*time.Second, 50*time.Millisecond, "the existing secret was not updated")
	after := managedSecret(t, ns, "regcred-reg-a")
	assert.Equal(t, before.UID, after.UID, "updated in place")
	assert.NoError(t, pull(t, env.regA, got, env.imageA), "the running Pod's secret pulls with the new account")

	// A change in the referenced Secret alone reaches it too.
	require.NoError(t, env.client.Get(t.Context(), client.ObjectKey{Namespace: regcredNamespace, Name: credsSecret}, &creds))
	creds.Data["reg-a-carol"] = []byte("not-carols-password")
	require.NoError(t, env.client.Update(t.Context(), &creds))
	require.Eventually(t, func() bool {
		s := managedSecret(t, ns, "regcred-reg-a")
		return s != nil && strings.Contains(string(s.Data[corev1.DockerConfigJsonKey]), base64.StdEncoding.EncodeToString([]byte("carol:not-carols-password")))
	}, 30*time.Second, 50*time.Millisecond, "a change of the referenced Secret did not reach the pull secret")
	assert.Error(t, pull(t, env.regA, got, env.imageA), "a wrong password no longer pulls")
	creds.Data["reg-a-carol"] = []byte(passwords["carol"])
	require.NoError(t, env.client.Update(t.Context(), &creds))
}

// 9. A broken config is rejected, named in an Event, and the previous one
// keeps serving.
func TestBrokenConfigKeepsLastGood(t *testing.T) {
	restoreConfig(t)
	good := env.app.ConfigStatus()
	require.NoError(t, good.LastError)

	broken := config(
		registryConfig("reg-a", env.regA, "alice", "reg-a", "  clusters: {mode: inject-sometimes}\n"),
		"- {name: hub, type: docker, url: quay.io, username: {value: u}, password: {value: inline-secret}}\n",
	)
	rv := writeConfig(t, broken)
	require.Eventually(t, func() bool { return env.app.ConfigStatus().RejectedVersion == rv }, 30*time.Second, 20*time.Millisecond)
	st := env.app.ConfigStatus()
	require.Error(t, st.LastError)
	msg := st.LastError.Error()
	assert.Contains(t, msg, `registry "reg-a": clusters.mode: "inject-sometimes" is not one of inject-everywhere-except, inject-only`)
	assert.Contains(t, msg, `registry "hub": url: "quay.io" is not a docker registry address`)
	assert.Contains(t, msg, `registry "hub": password: a credential must not be written inline in a ConfigMap`)
	testbed.NoSecret(t, "the rejection's message", msg, "inline-secret")
	assert.Equal(t, good.Version, st.Version, "the last good config keeps serving")

	// Pods still get what the last good config gives.
	got := createPod(t, clientset(t, nil), newNamespace(t), pod(env.imageA, env.imageB), metav1.CreateOptions{})
	assert.Equal(t, []string{"regcred-reg-a", "regcred-reg-b"}, secretNames(got))

	// The admin sees why on the config object.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var events eventsv1.EventList
		if !assert.NoError(c, env.client.List(t.Context(), &events, client.InNamespace(regcredNamespace))) {
			return
		}
		found := false
		for _, e := range events.Items {
			if e.Reason == "ConfigRejected" && e.Regarding.Name == configName && strings.Contains(e.Note, `registry "hub"`) {
				found = true
				assert.NotContains(c, e.Note, "inline-secret")
			}
		}
		assert.True(c, found, "no ConfigRejected event on the config")
	}, 30*time.Second, 100*time.Millisecond)
}

// Replicas racing to create the same pull secret all succeed, on the real
// API server, each with an index that has not seen it yet.
func TestConcurrentCreatesBothSucceed(t *testing.T) {
	ns := newNamespace(t)
	w, err := env.app.Registries().Get("reg-a").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	const replicas = 8
	errs := make(chan error, replicas)
	outcomes := make(chan secretstore.Outcome, replicas)
	start := make(chan struct{})
	for range replicas {
		// Each replica's index has not seen the Secret yet.
		e := &secretstore.Store{API: env.client, Index: secretstore.NewIndex(emptyReader{}, regcredNamespace)}
		go func() {
			<-start
			out, err := e.Apply(t.Context(), ns, w, false)
			errs <- err
			outcomes <- out
		}()
	}
	close(start)
	created := 0
	for range replicas {
		assert.NoError(t, <-errs)
		if <-outcomes == secretstore.Created {
			created++
		}
	}
	assert.Equal(t, 1, created, "exactly one replica created it; the others patched it")
	assert.NotNil(t, managedSecret(t, ns, "regcred-reg-a"))
}
