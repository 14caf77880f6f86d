package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/secretstore"
)

// largePod returns the JSON of a Pod with n containers, each with the env,
// mounts and resources real workloads carry.
func largePod(n int) []byte {
	p := corev1.Pod{}
	p.GenerateName = "big-"
	p.Annotations = map[string]string{"a": "b"}
	for i := range n {
		c := corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "quay.io/org/app:1"}
		if i%2 == 1 {
			c.Image = "myorg/worker:2"
		}
		for j := range 30 {
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

type steadyStore struct{}

func (steadyStore) Hosts(context.Context, string, string, bool) []string { return nil }

func (steadyStore) Apply(context.Context, string, *pullsecret.Want, bool) (secretstore.Outcome, error) {
	return secretstore.Unchanged, nil
}

// BenchmarkHandle is regcred's handler on Pods of growing size, in steady
// state (the pull secrets exist). Compare with BenchmarkBaselineFullDiff:
// decoding the whole Pod and diffing it against the mutated copy, what a
// handler built on admission.PatchResponseFromRaw does.
func BenchmarkHandle(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		raw := largePod(n)
		f := newFixture(b)
		f.h.Secrets = steadyStore{}
		req := podRequest(b, "app", string(raw))
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				resp := f.h.Handle(context.Background(), req)
				if len(resp.Patches) != 2 {
					b.Fatalf("patch: %v", resp.Patches)
				}
			}
		})
	}
}

func BenchmarkBaselineFullDiff(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		raw := largePod(n)
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var p corev1.Pod
				if err := json.Unmarshal(raw, &p); err != nil {
					b.Fatal(err)
				}
				p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: "regcred-quay"}, corev1.LocalObjectReference{Name: "regcred-hub"})
				p.Annotations[AnnotationInjected] = "regcred-quay=quay,regcred-hub=hub"
				out, err := json.Marshal(&p)
				if err != nil {
					b.Fatal(err)
				}
				if resp := admission.PatchResponseFromRaw(raw, out); len(resp.Patches) == 0 {
					b.Fatal("no patch")
				}
			}
		})
	}
}
