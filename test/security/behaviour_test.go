package security

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/regcred/regcred/test/testbed"
)

// A tenant who may write Secrets only where regcred does not serve makes
// one with regcred's name and labels: regcred never fills it.
func TestTenantSquatGetsNothing(t *testing.T) {
	ctx := t.Context()
	cs := clientset(t, nil)
	for _, ns := range []string{"quiet", "kube-system", excludedNS} {
		squat := ours(ns, "reg")
		squat.Type, squat.Data = corev1.SecretTypeOpaque, nil
		require.NoError(t, env.admin.Create(ctx, squat))
		t.Cleanup(func() { _ = env.admin.Delete(context.Background(), squat) })
		// A Pod there, and a review sent straight to regcred for it.
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod(env.image), metav1.CreateOptions{})
		require.NoError(t, err)
		resp := postReview(t, ns, pod(env.image))
		assert.True(t, resp.Allowed)
		assert.Empty(t, resp.Patch, "regcred injects nothing in %s", ns)
	}
	// A served namespace where a tenant squats the name first.
	app := testbed.NewNamespace(t, env.admin, "squat-")
	squat := ours(app, "reg")
	squat.Type, squat.Data = corev1.SecretTypeOpaque, nil
	require.NoError(t, env.admin.Create(ctx, squat))
	w := &testbed.Warnings{}
	p, err := clientset(t, w).CoreV1().Pods(app).Create(ctx, pod(env.image), metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Empty(t, testbed.PodSecretNames(p))
	assert.Contains(t, w.Take(), `regcred: a Secret named "regcred-reg" exists in namespace "`+app+`" and is not regcred's (it lacks regcred's labels or is not of type kubernetes.io/dockerconfigjson); regcred never overwrites it, so registry "reg"'s credentials were not injected: rename or delete that Secret (regcred looks again within a minute)`)

	time.Sleep(2 * time.Second) // leave the upkeep time to do wrong
	for _, ns := range []string{"quiet", "kube-system", excludedNS, app} {
		s := secretOf(t, ns, "regcred-reg")
		require.NotNil(t, s, ns)
		assert.Equal(t, corev1.SecretTypeOpaque, s.Type, ns)
		assert.Empty(t, s.Data, "regcred wrote nothing into %s", ns)
	}
}

// postReview sends a Pod's review straight to regcred's webhook port.
func postReview(t *testing.T, ns string, p *corev1.Pod) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(p)
	require.NoError(t, err)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "direct", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw}},
	})
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.ca.CertPEM)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Post("https://"+env.hooks.Addr+"/mutate-v1-pod", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var review admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(out, &review))
	require.NotNil(t, review.Response)
	return review.Response
}

// 80 first admissions at once, over 10 new namespaces, through two
// replicas: every Pod gets its secret, with no warning and nothing failed
// open.
func TestConcurrentFirstAdmissions(t *testing.T) {
	ctx := t.Context()
	failedBefore := metric(t, "regcred_admissions_total", `outcome="failed-open"`)
	var nss []string
	for range 10 {
		nss = append(nss, testbed.NewNamespace(t, env.admin, "first-"))
	}
	w := &testbed.Warnings{}
	cs := clientset(t, w)
	var wg sync.WaitGroup
	pods := make([]*corev1.Pod, 80)
	errs := make([]error, 80)
	start := make(chan struct{})
	for i := range pods {
		wg.Go(func() {
			<-start
			pods[i], errs[i] = cs.CoreV1().Pods(nss[i%10]).Create(ctx, pod(env.image), metav1.CreateOptions{})
		})
	}
	close(start)
	wg.Wait()
	for i, p := range pods {
		require.NoError(t, errs[i])
		assert.Equal(t, []string{"regcred-reg"}, testbed.PodSecretNames(p), "pod %d in %s", i, nss[i%10])
	}
	assert.Empty(t, w.Take(), "no warning")
	assert.Equal(t, failedBefore, metric(t, "regcred_admissions_total", `outcome="failed-open"`), "nothing failed open")
	for _, ns := range nss {
		s := secretOf(t, ns, "regcred-reg")
		require.NotNil(t, s, ns)
		assert.Equal(t, corev1.SecretTypeDockerConfigJson, s.Type)
	}
}

// A pull secret deleted, or edited, by hand while regcred serves its
// namespace is restored.
func TestSelfHealing(t *testing.T) {
	ctx := t.Context()
	ns := testbed.NewNamespace(t, env.admin, "heal-")
	_, err := clientset(t, nil).CoreV1().Pods(ns).Create(ctx, pod(env.image), metav1.CreateOptions{})
	require.NoError(t, err)
	good := secretOf(t, ns, "regcred-reg")
	require.NotNil(t, good)
	restoredBefore := metric(t, "regcred_pull_secrets_restored_total", `registry="reg"`)

	start := time.Now()
	require.NoError(t, env.admin.Delete(ctx, good))
	require.Eventually(t, func() bool { return secretOf(t, ns, "regcred-reg") != nil }, eventually, tick, "the deleted secret was not restored")
	t.Logf("deleted by hand: restored in %s", time.Since(start).Round(time.Millisecond))

	s := secretOf(t, ns, "regcred-reg")
	s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"evil.example.com":{}}}`)
	start = time.Now()
	require.NoError(t, env.admin.Update(ctx, s))
	require.Eventually(t, func() bool {
		now := secretOf(t, ns, "regcred-reg")
		return now != nil && bytes.Equal(now.Data[corev1.DockerConfigJsonKey], good.Data[corev1.DockerConfigJsonKey])
	}, eventually, tick, "the corrupted secret was not restored")
	t.Logf("corrupted by hand: restored in %s", time.Since(start).Round(time.Millisecond))
	assert.GreaterOrEqual(t, metric(t, "regcred_pull_secrets_restored_total", `registry="reg"`)-restoredBefore, 2.0)

	// Taken over by hand (its labels removed): no longer regcred's, left alone.
	s = secretOf(t, ns, "regcred-reg")
	s.Labels = nil
	require.NoError(t, env.admin.Update(ctx, s))
	time.Sleep(2 * time.Second)
	assert.Empty(t, secretOf(t, ns, "regcred-reg").Labels, "a Secret that is not regcred's any more is not written")
}

// The leader killed (SIGKILL) under 20 Pod creations a second, 600 in
// all: no creation fails, and every Pod gets its secret but those whose
// admission reached the killed replica between the kill and its removal
// from the Service's endpoints (the API server then admits them unchanged,
// as a cluster would: the webhook fails open).
func TestLeaderKilledUnderLoad(t *testing.T) {
	ctx := t.Context()
	ns := testbed.NewNamespace(t, env.admin, "load-")
	cs := clientset(t, nil)
	lead, err := leader(ctx)
	require.NoError(t, err)

	const total, killAfter = 600, 100
	var created, failed, withoutSecret, exposed atomic.Int32
	var killed, removed atomic.Bool
	every := time.NewTicker(50 * time.Millisecond)
	defer every.Stop()
	var wg sync.WaitGroup
	for i := range total {
		<-every.C
		if i == killAfter {
			lead.Kill()
			killed.Store(true)
			t.Logf("killed the leader %s", lead.Name)
			wg.Go(func() {
				start := time.Now()
				for env.hooks.Ready() > 1 {
					time.Sleep(10 * time.Millisecond)
				}
				removed.Store(true)
				t.Logf("the killed replica left the endpoints after %s", time.Since(start).Round(time.Millisecond))
			})
		}
		wg.Go(func() {
			sentBeforeRemoval := !removed.Load()
			p, err := cs.CoreV1().Pods(ns).Create(ctx, pod(env.image), metav1.CreateOptions{})
			if sentBeforeRemoval && killed.Load() {
				exposed.Add(1)
			}
			switch {
			case err != nil:
				failed.Add(1)
			case len(testbed.PodSecretNames(p)) == 0:
				withoutSecret.Add(1)
				created.Add(1)
			default:
				created.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d Pods created, %d failed, %d without their secret (%d sent between the kill and the endpoint's removal)",
		created.Load(), failed.Load(), withoutSecret.Load(), exposed.Load())
	assert.Zero(t, failed.Load(), "no Pod creation failed")
	assert.LessOrEqual(t, withoutSecret.Load(), exposed.Load(), "a replica was ready all along: only admissions that reached the killed replica went without")
	assert.Equal(t, int32(total), created.Load())

	// The other replica leads now; the killed one comes back.
	require.Eventually(t, func() bool {
		l, err := leader(ctx)
		return err == nil && l != lead
	}, eventually, 100*time.Millisecond, "the other replica took the lease")
	require.NoError(t, lead.start())
	require.NoError(t, waitReady(2, time.Minute))
}
