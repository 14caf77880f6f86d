package node

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/regcred/regcred/pkg/secretstore"
	"github.com/regcred/regcred/test/testbed"
)

// regcred runs on the node as in a cluster: its own image, built as make
// image builds it and pushed to a private registry; installed by helm,
// its Pods pulling that image with the chart's pull secret and called by
// the API server through their Service. The kubelet then pulls the
// images of Deployments that name no pull secret with the ones regcred
// injects, and without them is refused: the difference is regcred.
func TestRegcredOnTheNode(t *testing.T) {
	b := getBed(t)
	r := newRelease(t, b)
	ctx := t.Context()

	// The workloads' image, its own so that the kubelet pulls it here; the
	// same image is served under the ECR registry's name.
	sleeper, err := testbed.GoProgram(ctx, testbed.WaitForTermSource)
	require.NoError(t, err)
	_, err = testbed.PushImage(ctx, b.reg, "apps/web", "v1", user, password, testbed.Image{
		Files: []testbed.File{{Path: "/web", Content: sleeper}}, Entrypoint: []string{"/web", "serving"},
	})
	require.NoError(t, err)
	webImage, ecrImage := b.reg.Host+"/apps/web:v1", ecrHost+"/apps/web:v1"
	nsWeb, nsLoop, nsECR, nsOut, nsAfter := b.namespace(t), b.namespace(t), b.namespace(t), b.namespace(t), b.namespace(t)
	b.optOut(t, nsOut)

	var tag string
	require.True(t, t.Run("regcred's image is built and pushed to the private registry", func(t *testing.T) {
		start := time.Now()
		r.image, err = testbed.BuildRegcredImage(ctx)
		require.NoError(t, err)
		built := since(start)
		tag = r.image.Metadata.Version
		start = time.Now()
		r.digest, err = r.image.Push(ctx, b.reg, imageRepo, tag, user, password)
		require.NoError(t, err)
		t.Logf("regcred %s for %s built in %s (make image's build), pushed in %s: %s", tag, r.image.Platform, built, since(start), r.digest)
	}))

	require.True(t, t.Run("helm install: regcred's Pods pull its image and become Ready", func(t *testing.T) {
		took := r.helmRelease(t, "install", r.values(tag))
		pods := r.pods(t)
		require.Len(t, pods, 2)
		_, digest, _ := strings.Cut(r.digest, "@")
		for _, p := range pods {
			assert.Equal(t, b.node.Name, p.Spec.NodeName)
			assert.True(t, ready(&p), "%s: %s", p.Name, describe(&p))
			assert.Equal(t, b.reg.Host+"/"+imageRepo+":"+tag, p.Spec.Containers[0].Image)
			require.Len(t, p.Status.ContainerStatuses, 1)
			assert.Equal(t, b.reg.Host+"/"+imageRepo+"@"+digest, p.Status.ContainerStatuses[0].ImageID, "the image pushed is the image running")
			// Its own namespace is never served: the chart's secret only.
			assert.Equal(t, []string{imagePull}, testbed.PodSecretNames(&p))
			assert.NotContains(t, p.Annotations, "regcred.io/injected")
		}
		t.Logf("helm install --wait: 2 regcred Pods Ready on %s in %s", b.node.Name, took.Round(time.Millisecond))
	}))

	var refused *corev1.Pod
	require.True(t, t.Run("without the registry in regcred's config the kubelet is refused", func(t *testing.T) {
		before := r.admissions(t, "unchanged")
		start := time.Now()
		b.deploy(t, nsWeb, "web", webImage)
		refused = b.deploymentPod(t, nsWeb, "web", 2*time.Minute, pullFailed)
		w := refused.Status.ContainerStatuses[0].State.Waiting
		t.Logf("Deployment's Pod %s in %s: %s", w.Reason, since(start), w.Message)
		assert.Contains(t, w.Message, noCredentials)
		assert.Empty(t, refused.Spec.ImagePullSecrets)
		// regcred did review the Pod, through its Service: it had nothing
		// to give.
		assert.Greater(t, r.admissions(t, "unchanged"), before, "regcred's admissions with outcome unchanged")
	}))

	require.True(t, t.Run("with the registry in the config the same Deployment runs, pulled with the secret regcred injected", func(t *testing.T) {
		took := r.helmRelease(t, "upgrade", r.values(tag, r.privateRegistry()))
		start := time.Now()
		b.waitServed(t, nsWeb, webImage, "regcred-private")
		t.Logf("helm upgrade (config only) in %s; regcred served the new registry %s later", took.Round(time.Millisecond), since(start))
		// The refused Pod is deleted; its ReplicaSet makes another.
		start = time.Now()
		require.NoError(t, b.cs.CoreV1().Pods(nsWeb).Delete(ctx, refused.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
		p := b.deploymentPod(t, nsWeb, "web", 2*time.Minute, running)
		t.Logf("the Deployment's new Pod Running in %s (image pulled with the injected secret)", since(start))
		assert.Equal(t, []string{"regcred-private"}, testbed.PodSecretNames(p))
		assert.Equal(t, "regcred-private=private", p.Annotations["regcred.io/injected"])
		s, err := b.cs.CoreV1().Secrets(nsWeb).Get(ctx, "regcred-private", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, corev1.SecretTypeDockerConfigJson, s.Type)
		assert.Equal(t, user, dockerAuth(t, s, b.reg.Host).Username)
	}))

	require.True(t, t.Run("helm upgrade to a new tag and config: no Pod created during the rollout lacks its secret", func(t *testing.T) {
		d, err := b.cs.AppsV1().Deployments(regcredNS).Get(ctx, releaseName, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "0", d.Spec.Strategy.RollingUpdate.MaxUnavailable.String())
		_, err = b.cs.PolicyV1().PodDisruptionBudgets(regcredNS).Get(ctx, releaseName, metav1.GetOptions{})
		require.NoError(t, err)
		old := names(r.pods(t), func(p *corev1.Pod) string { return p.Name })

		// The same image under a second tag.
		newTag := tag + "-upgrade"
		_, err = r.image.Push(ctx, b.reg, imageRepo, newTag, user, password)
		require.NoError(t, err)
		loop := b.startPodLoop(t, nsLoop, webImage, "regcred-private", 100*time.Millisecond)
		start := time.Now()
		took := r.helmRelease(t, "upgrade", r.values(newTag, r.privateRegistry(), ecrRegistry()))
		// helm waits for the new replicas; the old ones still drain.
		require.Eventually(t, func() bool {
			pods := r.pods(t)
			return len(pods) == 2 && !slices.ContainsFunc(pods, func(p corev1.Pod) bool { return slices.Contains(old, p.Name) })
		}, 2*time.Minute, 100*time.Millisecond, "the old replicas never went: %s", r.describePods(t))
		rolled := since(start)
		time.Sleep(time.Second)
		created, lacking, errs := loop.Stop()
		t.Logf("rollout to %s: helm upgrade --wait %s, old replicas gone after %s; %d Pods created meanwhile (one every 100ms), %d without their secret",
			newTag, took.Round(time.Millisecond), rolled, created, len(lacking))
		assert.Empty(t, errs)
		assert.Empty(t, lacking, "Pods admitted without regcred-private")
		assert.Greater(t, created, 50, "the loop ran through the rollout")
		for _, p := range r.pods(t) {
			assert.Equal(t, b.reg.Host+"/"+imageRepo+":"+newTag, p.Spec.Containers[0].Image)
			assert.True(t, ready(&p), describe(&p))
		}
	}))

	require.True(t, t.Run("ECR: a Deployment pulls with the token regcred minted, and without it is refused", func(t *testing.T) {
		start := time.Now()
		b.deploy(t, nsECR, "web", ecrImage)
		p := b.deploymentPod(t, nsECR, "web", 2*time.Minute, running)
		t.Logf("ECR Deployment's Pod Running in %s", since(start))
		assert.Equal(t, []string{"regcred-ecr"}, testbed.PodSecretNames(p))
		s, err := b.cs.CoreV1().Secrets(nsECR).Get(ctx, "regcred-ecr", metav1.GetOptions{})
		require.NoError(t, err)
		a := dockerAuth(t, s, ecrHost)
		assert.Equal(t, "AWS", a.Username)
		expires, minted := r.ecr.TokenExpiry(a.Password)
		assert.True(t, minted, "the secret holds a token the endpoint minted")
		assert.WithinDuration(t, time.Now().Add(time.Hour), expires, time.Minute+time.Since(start))
		calls := r.ecr.Calls()
		require.NotEmpty(t, calls, "regcred's Pod called the ECR endpoint")
		for _, c := range calls {
			assert.Equal(t, ecrKeyID, c.AccessKeyID)
			assert.Equal(t, "us-east-1", c.Region)
			assert.True(t, c.SignatureOK, "signed with the key in the config")
			assert.Equal(t, 200, c.Status)
		}

		// A namespace that opted out gets no token: the registry refuses.
		b.deploy(t, nsOut, "web", ecrImage)
		out := b.deploymentPod(t, nsOut, "web", 2*time.Minute, pullFailed)
		w := out.Status.ContainerStatuses[0].State.Waiting
		t.Logf("ECR Deployment in a namespace labelled regcred.io/inject=false: %s: %s", w.Reason, w.Message)
		assert.Contains(t, w.Message, noCredentials)
		assert.Empty(t, out.Spec.ImagePullSecrets)
	}))

	t.Run("helm uninstall leaves the pull secrets and regcred's own records", func(t *testing.T) {
		start := time.Now()
		_, err := r.helm.Run(ctx, "uninstall", releaseName, "-n", regcredNS, "--wait", "--timeout", "2m")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(r.pods(t)) == 0 }, 2*time.Minute, 100*time.Millisecond, r.describePods(t))
		t.Logf("helm uninstall --wait, regcred's Pods gone, in %s", since(start))
		r.requireLeftovers(t, []string{nsWeb + "/regcred-private", nsLoop + "/regcred-private", nsECR + "/regcred-ecr"})

		// Nothing serves Pods any more.
		p, err := b.cs.CoreV1().Pods(nsAfter).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "after"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: webImage}}, NodeSelector: neverScheduled},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Empty(t, p.Spec.ImagePullSecrets)
	})
}

// requireLeftovers checks what helm uninstall leaves: the pull secrets
// regcred made (pullSecrets, namespace/name), and in its namespace the
// records regcred wrote and the admin's objects; helm removed the rest.
func (r *release) requireLeftovers(t *testing.T, pullSecrets []string) {
	t.Helper()
	ctx := t.Context()
	cs := r.b.cs
	assert.ElementsMatch(t, pullSecrets, r.b.managedSecrets(t), "regcred's pull secrets stay: nothing is left to delete them")

	cms, err := cs.CoreV1().ConfigMaps(regcredNS).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var index, other []string
	for _, cm := range cms.Items {
		if cm.Labels[secretstore.LabelIndex] == secretstore.IndexValue {
			index = append(index, cm.Name)
		} else {
			other = append(other, cm.Name)
		}
	}
	assert.NotEmpty(t, index, "the index of pull secrets stays")
	assert.Subset(t, secretstore.ShardNames(), index)
	assert.ElementsMatch(t, []string{"ecr-ca", "kube-root-ca.crt", "regcred-status"}, other,
		"the status ConfigMap stays; helm removed regcred-config")
	secrets, err := cs.CoreV1().Secrets(regcredNS).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"ecr-keys", imagePull, "private-registry", "regcred-last-good-config", "regcred-tls"},
		names(secrets.Items, func(s *corev1.Secret) string { return s.Name }),
		"the last good config and the TLS material regcred made stay; helm removed its release records")
	leases, err := cs.CoordinationV1().Leases(regcredNS).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{releaseName}, names(leases.Items, func(l *coordinationv1.Lease) string { return l.Name }), "the leader-election Lease stays")
	events, err := cs.CoreV1().Events(regcredNS).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	// By whom and why: regcred's own, and those of its Pods' lifecycle.
	bySource := map[string]int{}
	for _, e := range events.Items {
		by := e.ReportingController
		if by == "" {
			by = e.Source.Component
		}
		bySource[by+"/"+e.Reason]++
	}
	t.Logf("left behind: pull secrets %v; in %s: index ConfigMaps %v, ConfigMaps %v, Secrets %v, Lease %s, Events by source %v",
		r.b.managedSecrets(t), regcredNS, index, other, names(secrets.Items, func(s *corev1.Secret) string { return s.Name }), releaseName, bySource)

	// Cluster-wide, nothing of regcred's.
	_, err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, releaseName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "MutatingWebhookConfiguration: %v", err)
	_, err = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, releaseName+"-pull-secrets", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "ValidatingWebhookConfiguration: %v", err)
	_, err = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, releaseName+"-pull-secrets", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "ValidatingAdmissionPolicy: %v", err)
	_, err = cs.RbacV1().ClusterRoles().Get(ctx, releaseName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "ClusterRole: %v", err)
}

// dockerAuth returns the credentials a dockerconfigjson Secret holds for
// host.
func dockerAuth(t *testing.T, s *corev1.Secret, host string) struct{ Username, Password string } {
	t.Helper()
	var cfg struct {
		Auths map[string]struct{ Username, Password string } `json:"auths"`
	}
	require.NoError(t, json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg))
	a, ok := cfg.Auths[host]
	require.True(t, ok, "secret %s/%s has no entry for %s", s.Namespace, s.Name, host)
	return a
}

// optOut labels a namespace regcred.io/inject=false.
func (b *bed) optOut(t *testing.T, ns string) {
	t.Helper()
	_, err := b.cs.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"regcred.io/inject":"false"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
