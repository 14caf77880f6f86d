package recovery

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// fullPod is a Pod as a Deployment makes it and the kubelet reports it,
// with everything recovery does not need.
func fullPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d4b9-x2x9z", Namespace: "app", UID: "uid-1", ResourceVersion: "42",
			Labels:      map[string]string{"app": "web", "pod-template-hash": "7d4b9", "regcred.io/inject": "true"},
			Annotations: map[string]string{"regcred.io/injected": "quay: regcred-quay", "checksum": "abc"},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "example.com/v1", Kind: "Thing", Name: "thing", UID: "t"},
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9", UID: "rs", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)},
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate}},
			Finalizers:    []string{"example.com/keep"},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "quay.io/org/init:1"}},
			Containers: []corev1.Container{
				{Name: "web", Image: "quay.io/org/web:1", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
				{Name: "sidecar", Image: "docker.io/library/envoy:1"},
			},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}},
			ImagePullSecrets:    []corev1.LocalObjectReference{{Name: "mine"}, {Name: "regcred-hub"}},
			NodeName:            "node-1",
			Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "quay.io/org/data:1"}}}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", Image: "quay.io/org/init:1",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonImagePullBackOff, Message: "Back-off pulling image"}}}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "web", Image: "quay.io/org/web:1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonErrImagePull}}},
				{Name: "sidecar", Image: "envoy:1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}},
			},
			EphemeralContainerStatuses: []corev1.ContainerStatus{{Name: "debug", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonErrImagePull}}}},
			Conditions:                 []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
			PodIP:                      "10.0.0.1",
		},
	}
}

func TestView(t *testing.T) {
	v := View(fullPod())
	assert.Equal(t, &Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d4b9-x2x9z", Namespace: "app", UID: "uid-1",
			Labels: map[string]string{"regcred.io/inject": "true"},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9", UID: "rs", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)},
			},
		},
		// Image volumes last, as the webhook reads them; no ephemeral
		// container's, which admission never sees.
		Images:      []string{"quay.io/org/init:1", "quay.io/org/web:1", "docker.io/library/envoy:1", "quay.io/org/data:1"},
		PullSecrets: []string{"mine", "regcred-hub"},
		Failing: []Failure{
			{Container: "init", Image: "quay.io/org/init:1", Reason: ReasonImagePullBackOff},
			{Container: "web", Image: "quay.io/org/web:1", Reason: ReasonErrImagePull},
		},
	}, v, "only what the decision, the eviction and the Event need")

	pod, failing := v.planPod()
	assert.Equal(t, v.Images, pod.Images)
	assert.Equal(t, v.PullSecrets, pod.PullSecrets)
	assert.Equal(t, map[string]string{"regcred.io/inject": "true"}, pod.Labels)
	assert.Equal(t, []string{"quay.io/org/init:1", "quay.io/org/web:1"}, failing)
}

func TestViewOfDegeneratePods(t *testing.T) {
	v := View(&corev1.Pod{})
	assert.Empty(t, v.Images)
	assert.Empty(t, v.Failing)
	assert.Nil(t, v.Labels)
	assert.Nil(t, v.Recreator())

	// A status for a container the spec does not have, a waiting state
	// without a reason, a terminated one.
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "x"}}}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "ghost", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonErrImagePull}}},
		{Name: "a", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}},
		{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error"}}},
	}
	assert.Empty(t, View(p).Failing)
}

func TestStrip(t *testing.T) {
	out, err := Strip(fullPod())
	require.NoError(t, err)
	assert.IsType(t, &Pod{}, out)
	// Anything else (a tombstone) passes unchanged.
	other := "not a pod"
	out, err = Strip(other)
	require.NoError(t, err)
	assert.Equal(t, other, out)
}

func TestRecreator(t *testing.T) {
	ctrl := func(apiVersion, kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "o", Controller: ptr.To(true)}}
	}
	for _, tc := range []struct {
		name  string
		refs  []metav1.OwnerReference
		wants bool
	}{
		{"ReplicaSet", ctrl("apps/v1", "ReplicaSet"), true},
		{"StatefulSet", ctrl("apps/v1", "StatefulSet"), true},
		{"DaemonSet", ctrl("apps/v1", "DaemonSet"), true},
		{"Job", ctrl("batch/v1", "Job"), true},
		{"bare Pod", nil, false},
		{"a static Pod's mirror", ctrl("v1", "Node"), false},
		{"a ReplicaSet of another group", ctrl("example.com/v1", "ReplicaSet"), false},
		{"another controller", ctrl("argoproj.io/v1alpha1", "Rollout"), false},
		{"an owner that is not the controller", []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "o"}}, false},
		{"controller false", []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "o", Controller: ptr.To(false)}}, false},
		{"a malformed apiVersion", ctrl("a/b/c", "ReplicaSet"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: tc.refs}}
			got := View(p).Recreator()
			assert.Equal(t, tc.wants, got != nil)
		})
	}
}

func TestSameInputs(t *testing.T) {
	a := View(fullPod())
	flipped := fullPod()
	flipped.Status.ContainerStatuses[0].State.Waiting.Reason = ReasonImagePullBackOff
	assert.True(t, sameInputs(a, View(flipped)), "the kubelet's back-off flips the reason: same decision")

	for name, change := range map[string]func(*corev1.Pod){
		"another UID":   func(p *corev1.Pod) { p.UID = "uid-2" },
		"another image": func(p *corev1.Pod) { p.Spec.Containers[0].Image = "quay.io/org/web:2" },
		"a pull secret added": func(p *corev1.Pod) {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: "x"})
		},
		"opted out": func(p *corev1.Pod) { p.Labels["regcred.io/inject"] = "false" },
		"one pull recovered": func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		},
	} {
		p := fullPod()
		change(p)
		assert.False(t, sameInputs(a, View(p)), name)
	}
}
