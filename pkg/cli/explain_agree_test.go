package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	regcredadmission "github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
)

type okStore struct{}

func (okStore) Apply(context.Context, string, *pullsecret.Want, bool) (secretstore.Outcome, error) {
	return secretstore.Created, nil
}

func (okStore) Hosts(context.Context, string, string, bool) []string { return nil }

type clusterNamespaces struct{ c client.Reader }

func (n clusterNamespaces) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	var ns corev1.Namespace
	if err := n.c.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

type noMetrics struct{}

func (noMetrics) Admission(regcredadmission.Outcome)        {}
func (noMetrics) Injected(string)                           {}
func (noMetrics) SecretEnsured(string, secretstore.Outcome) {}
func (noMetrics) Unserved(plan.Reason)                      {}

// admitted returns the pull secrets the webhook appends to a Pod.
func admitted(t *testing.T, h *regcredadmission.Handler, pod *corev1.Pod) []string {
	t.Helper()
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
			Namespace: pod.Namespace, Object: runtime.RawExtension{Raw: raw},
		},
	})
	require.NoError(t, err)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/mutate-v1-pod", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var review admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &review))
	require.True(t, review.Response.Allowed)
	var ops []struct {
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if len(review.Response.Patch) > 0 {
		require.NoError(t, json.Unmarshal(review.Response.Patch, &ops))
	}
	var added []string
	for _, op := range ops {
		switch op.Path {
		case "/spec/imagePullSecrets":
			var refs []corev1.LocalObjectReference
			require.NoError(t, json.Unmarshal(op.Value, &refs))
			for _, ref := range refs {
				added = append(added, ref.Name)
			}
		case "/spec/imagePullSecrets/-":
			var ref corev1.LocalObjectReference
			require.NoError(t, json.Unmarshal(op.Value, &ref))
			added = append(added, ref.Name)
		}
	}
	return added
}

// `regcred explain` and the webhook decide alike: on a table of Pods, the
// secrets explain says regcred will inject are those the webhook's
// handler appends, in order.
func TestExplainAgreesWithTheWebhook(t *testing.T) {
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "hub"}, Data: map[string][]byte{"token": []byte("t")}}
	others := []client.Object{creds}
	for _, name := range []string{"quay", "team-a", "prod"} {
		key := map[string]string{"quay": "token", "team-a": "p", "prod": "p"}[name]
		others = append(others, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: name}, Data: map[string][]byte{key: []byte("t")}})
	}
	c := cluster(others...)

	// The webhook, as app wires it: the config with its Secrets read.
	set, err := registries.Load(t.Context(), []byte(explainConfig), registries.Options{
		ClusterName: "prod", StoredIn: config.InConfigMap,
		Secrets: configwatch.SecretReader{Reader: c, Namespace: "regcred"},
	})
	require.NoError(t, err)
	h := &regcredadmission.Handler{
		Registries: func() *registries.Set { return set },
		Secrets:    okStore{},
		Namespaces: clusterNamespaces{c},
		Exclusions: plan.Exclusions{"kube-system": true, "regcred": true, "monitoring": true},
		Metrics:    noMetrics{},
	}

	hub, quay := "docker.io/myorg/web:1", "quay.io/org/worker:2"
	withInit := testPod("shop", "init", []string{hub}, nil, nil)
	withInit.Spec.InitContainers = []corev1.Container{{Name: "i", Image: quay}}
	withInit.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e", Image: "harbor.example.com/debug"}}}
	withVolumes := testPod("shop", "volumes", []string{"nginx"}, nil, nil)
	withVolumes.Spec.Volumes = []corev1.Volume{
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: quay}}},
		{Name: "model", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: hub}}},
	}
	optedOut := testPod("shop", "quiet", []string{hub}, nil, nil)
	optedOut.Labels = map[string]string{plan.LabelInject: "false"}
	for _, pod := range []*corev1.Pod{
		testPod("shop", "two", []string{hub, quay, "nginx"}, nil, nil),
		testPod("shop", "listed", []string{hub, quay}, []string{"regcred-hub"}, nil),
		testPod("team-a", "scoped", []string{"team-a.example.com/x"}, []string{"mine"}, nil),
		testPod("shop", "unscoped", []string{"team-a.example.com/x"}, nil, nil),
		testPod("monitoring", "excluded", []string{hub}, nil, nil),
		testPod("regcred", "self", []string{hub}, nil, nil),
		testPod("shop", "admin", []string{"harbor.example.com/x", "prod.example.com/y"}, nil, nil),
		testPod("shop", "odd", []string{"Quay.io/org/app", "quay.io/org/app:", "docker.io/myorg/a", "index.docker.io/myorg/b"}, nil, nil),
		withInit, withVolumes, optedOut,
	} {
		t.Run(pod.Name, func(t *testing.T) {
			webhook := admitted(t, h, pod)

			doc, err := yaml.Marshal(pod)
			require.NoError(t, err)
			file := writeFile(t, "pod.yaml", "apiVersion: v1\nkind: Pod\n"+string(doc))
			res := explainJSON(t, c, "-f", file)
			var planned []string
			for _, s := range res.PullSecrets {
				if s.Planned {
					planned = append(planned, s.Name)
				}
			}
			assert.Equal(t, webhook, planned)
		})
	}
}

// explain names the images it reads in the order the webhook reads them
// (admission.PlanInput): init containers, containers, ephemeral
// containers, image volumes, without empty ones.
func TestContainersReadLikeTheWebhook(t *testing.T) {
	pod := testPod("shop", "all", []string{"a:1", "", "b:1"}, nil, nil)
	pod.Spec.InitContainers = []corev1.Container{{Name: "i", Image: "init:1"}, {Name: "none"}}
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e", Image: "debug:1"}}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "data:1"}}},
		{Name: "unset", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{PullPolicy: corev1.PullAlways}}},
		{Name: "a-again", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "a:1"}}},
	}
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	in, err := regcredadmission.PlanInput(raw)
	require.NoError(t, err)
	var got []string
	for _, c := range containers(&pod.Spec) {
		got = append(got, c.image)
	}
	assert.Equal(t, in.Images, got)
	assert.Equal(t, []container{{"i", "init:1", false}, {"a", "a:1", false}, {"c", "b:1", false}, {"e", "debug:1", false}, {"data", "data:1", true}, {"a-again", "a:1", true}},
		containers(&pod.Spec))
}
