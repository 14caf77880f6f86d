package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/regcred/regcred/test/testbed"
)

// webhookSource is an admission webhook that allows everything with a
// warning, served over TLS from a certificate in /tls.
const webhookSource = `package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	http.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Request struct{ UID string } ` + "`json:\"request\"`" + `
		}
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		host, _ := os.Hostname()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"response": map[string]any{"uid": review.Request.UID, "allowed": true,
				"warnings": []string{"reviewed by Pod " + host}},
		})
	})
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM)
		<-signals
		os.Exit(0)
	}()
	panic(http.ListenAndServeTLS(":8443", "/tls/tls.crt", "/tls/tls.key", nil))
}
`

// The API server calls a webhook Pod through its Service: with no
// kube-proxy, it resolves the Service to its endpoints' Pod IPs and
// reaches them over the node's bridge. regcred runs this way in a cluster.
func TestWebhookPodThroughService(t *testing.T) {
	b := getBed(t)
	ns := b.namespace(t)
	ctx := t.Context()

	program, err := testbed.GoProgram(ctx, webhookSource)
	require.NoError(t, err)
	_, err = testbed.PushImage(ctx, b.reg, "team/webhook", "v1", user, password, testbed.Image{
		Files:      []testbed.File{{Path: "/webhook", Content: program}},
		Entrypoint: []string{"/webhook"},
	})
	require.NoError(t, err)

	pair, err := b.ca.Issue([]string{"webhook." + ns + ".svc"}, time.Hour)
	require.NoError(t, err)
	_, err = b.cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: pair.CertPEM, corev1.TLSPrivateKeyKey: pair.KeyPEM},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	secret := b.pullSecret(t, ns, "pull", password)

	start := time.Now()
	labels := map[string]string{"app": "webhook"}
	_, err = b.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook", Labels: labels},
		Spec: corev1.PodSpec{
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: secret}},
			Containers: []corev1.Container{{
				Name: "webhook", Image: b.reg.Host + "/team/webhook:v1",
				VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/tls", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: "webhook-tls"},
			}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = b.cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
			Port: 443, TargetPort: intstr.FromInt32(8443),
		}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	p := b.waitPod(t, ns, "webhook", 2*time.Minute, running)
	t.Logf("webhook Pod Running in %s at %s", since(start), p.Status.PodIP)

	webhooks := b.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cfg, err := webhooks.Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-test-"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "review.node.test",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service:  &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "webhook", Path: ptr.To("/validate"), Port: ptr.To[int32](443)},
				CABundle: b.ca.CertPEM,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr.To[int32](5),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The test's context has ended when cleanups run.
	t.Cleanup(func() {
		assert.NoError(t, webhooks.Delete(context.WithoutCancel(t.Context()), cfg.Name, metav1.DeleteOptions{}))
	})

	// The API server sees the configuration and the Service's endpoints
	// shortly after they are written: retry until the Pod answers.
	warnings := &testbed.Warnings{}
	cs := testbed.Clientset(t, b.cp.Config, warnings)
	start = time.Now()
	// The last try's error is what a failure reports.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "reviewed-"},
		}, metav1.CreateOptions{})
		assert.NoError(c, err)
		reviewed := false
		for _, w := range warnings.Take() {
			reviewed = reviewed || strings.Contains(w, "reviewed by Pod webhook")
		}
		assert.True(c, reviewed, "reviewed by the webhook Pod")
	}, time.Minute, 200*time.Millisecond, "the webhook Pod never reviewed a ConfigMap")
	t.Logf("API server reached the webhook Pod through its Service %s after the configuration was created", since(start))
}
