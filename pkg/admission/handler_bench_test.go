package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/secretstore"
)

// largePod returns the JSON of a Pod with n containers, each with env
// variables, mounts and resources as real workloads carry them, half of
// them from a private registry.
func largePod(n, env int) []byte {
	p := corev1.Pod{}
	p.GenerateName = "big-"
	p.Annotations = map[string]string{"a": "b"}
	for i := range n {
		c := corev1.Container{Name: fmt.Sprintf("c%d", i), Image: fmt.Sprintf("quay.io/org/app-%d:1", i)}
		if i%2 == 1 {
			c.Image = fmt.Sprintf("myorg/worker-%d:2", i)
		}
		for j := range env {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", j), Value: fmt.Sprintf("value-%d-%d", i, j)})
		}
		for j := range 5 {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("v%d", j), MountPath: fmt.Sprintf("/mnt/%d", j)})
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return raw
}

// volumePod returns the JSON of a Pod with one container and n volumes,
// as real workloads carry them: every other one an image volume (half of
// those from a private registry), the others ConfigMaps and projected
// service account tokens.
func volumePod(n int) []byte {
	p := corev1.Pod{}
	p.GenerateName = "vol-"
	c := corev1.Container{Name: "app", Image: "quay.io/org/app:1"}
	for i := range n {
		v := corev1.Volume{Name: fmt.Sprintf("v%d", i)}
		switch i % 4 {
		case 0:
			v.Image = &corev1.ImageVolumeSource{Reference: fmt.Sprintf("quay.io/org/data-%d:1", i), PullPolicy: corev1.PullIfNotPresent}
		case 2:
			v.Image = &corev1.ImageVolumeSource{Reference: fmt.Sprintf("ghcr.io/public/model-%d:1", i), PullPolicy: corev1.PullIfNotPresent}
		case 1:
			v.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: fmt.Sprintf("cm-%d", i)}, Items: []corev1.KeyToPath{{Key: "a", Path: "a"}}}
		default:
			expiry := int64(3600)
			v.Projected = &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}}}}
		}
		p.Spec.Volumes = append(p.Spec.Volumes, v)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: fmt.Sprintf("/mnt/%d", i)})
	}
	p.Spec.Containers = []corev1.Container{c}
	raw, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return raw
}

type steadyStore struct{}

func (steadyStore) Apply(context.Context, string, *pullsecret.Want, bool) (secretstore.Outcome, error) {
	return secretstore.Unchanged, nil
}

// serveBody answers one review body with h, as the webhook server would.
func serveBody(tb testing.TB, h http.Handler, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/mutate-v1-pod", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
		tb.Fatalf("HTTP %d: %s", rec.Code, rec.Body.Bytes())
	}
	return rec
}

// The Pods of growing size the handler is measured on: containers,
// environment variables in one container, and volumes.
var podSizes = []struct {
	name string
	pod  []byte
}{
	{"containers=10", largePod(10, 10)},
	{"containers=100", largePod(100, 10)},
	{"containers=1000", largePod(1000, 10)},
	{"env=10", largePod(1, 10)},
	{"env=100", largePod(1, 100)},
	{"env=1000", largePod(1, 1000)},
	{"volumes=100", volumePod(100)},
	{"volumes=1000", volumePod(1000)},
}

// BenchmarkServeHTTP is a whole review through the handler in steady
// state (the pull secrets exist): reading the review, the plan, the
// self-check, the answer. Its time grows with the Pod's size, linearly
// (TestHandlerIsLinear).
func BenchmarkServeHTTP(b *testing.B) {
	f := newFixture(b)
	f.h.Secrets = steadyStore{}
	for _, size := range podSizes {
		body := podReview("app", string(size.pod)).json()
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				serveBody(b, f.h, body)
			}
		})
	}
}

// BenchmarkPlumbing compares, on the same review, regcred's handler with
// two baselines that look at nothing: controller-runtime's admission
// webhook with a handler that allows everything (the plumbing regcred's
// handler replaces), and what a minimal net/http webhook does
// (encoding/json in and out, a one-operation patch).
func BenchmarkPlumbing(b *testing.B) {
	body := podReview("app", `{"metadata":{"generateName":"web-","labels":{"app":"web"}},"spec":{"containers":[{"name":"a","image":"quay.io/org/app:1","env":[{"name":"A","value":"1"}]},{"name":"b","image":"nginx:1.27"}]}}`).json()
	f := newFixture(b)
	f.h.Secrets = steadyStore{}
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"regcred", f.h},
		{"controller-runtime-allow", &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })}},
		{"floor", http.HandlerFunc(floorHandler)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serveBody(b, tc.h, body)
			}
		})
	}
}

// floorHandler is what a minimal webhook does, as test/bench/floor.
func floorHandler(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Request struct {
			UID    string `json:"uid"`
			Object struct {
				Spec struct {
					Containers []struct {
						Image string `json:"image"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"object"`
		} `json:"request"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	patch := []byte(`[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"floor"}]}]`)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"response": map[string]any{"uid": in.Request.UID, "allowed": true, "patchType": "JSONPatch", "patch": patch},
	})
}
