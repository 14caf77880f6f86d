package recovery

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/regcred/regcred/pkg/plan"
)

// The waiting reasons of a container whose image the kubelet could not
// pull (k8s.io/kubernetes/pkg/kubelet/images).
const (
	ReasonErrImagePull     = "ErrImagePull"
	ReasonImagePullBackOff = "ImagePullBackOff"
)

// Pod is what recovery keeps of a Pod, and all it keeps: enough to ask the
// plan, to evict the Pod and to say why. The cache holds these, never
// whole Pods (a Pod is several kilobytes; this, a few hundred bytes).
type Pod struct {
	// ObjectMeta holds the name, namespace, UID, deletion timestamp, the
	// controller's owner reference only, and of the labels only
	// regcred.io/inject (what the plan reads).
	metav1.ObjectMeta
	// Images are the Pod's images as the plan read them at admission:
	// init containers, containers, then image volumes (not ephemeral
	// containers, which a Pod is never created with).
	Images []string
	// PullSecrets are the names in the Pod's imagePullSecrets, in order.
	PullSecrets []string
	// Failing are the images of containers and init containers waiting
	// because their pull failed; nil for almost every Pod.
	Failing []Failure
}

// Failure is a container whose image could not be pulled.
type Failure struct {
	Container, Image string
	// Reason is ErrImagePull or ImagePullBackOff.
	Reason string
}

// Strip is the cache's transform: it turns a Pod into the recovery view of
// it. Anything else passes unchanged (the informer's tombstones).
func Strip(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return View(p), nil
}

// View returns the recovery view of p.
func View(p *corev1.Pod) *Pod {
	v := &Pod{ObjectMeta: metav1.ObjectMeta{
		Name:              p.Name,
		Namespace:         p.Namespace,
		UID:               p.UID,
		DeletionTimestamp: p.DeletionTimestamp,
	}}
	if inject, ok := p.Labels[plan.LabelInject]; ok {
		v.Labels = map[string]string{plan.LabelInject: inject}
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		v.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	// The images the webhook planned for: a Pod is created without
	// ephemeral containers, and a debugger's image must not change which
	// secret the plan picks for the others.
	n := len(p.Spec.InitContainers) + len(p.Spec.Containers)
	if n > 0 {
		v.Images = make([]string, 0, n)
	}
	for _, c := range p.Spec.InitContainers {
		v.Images = append(v.Images, c.Image)
	}
	for _, c := range p.Spec.Containers {
		v.Images = append(v.Images, c.Image)
	}
	for _, vol := range p.Spec.Volumes {
		if vol.Image != nil && vol.Image.Reference != "" {
			v.Images = append(v.Images, vol.Image.Reference)
		}
	}
	for _, s := range p.Spec.ImagePullSecrets {
		v.PullSecrets = append(v.PullSecrets, s.Name)
	}
	// An ephemeral container's image is a debugger's choice: recreating
	// the Pod would not bring it back, so its failure is not counted.
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range statuses {
			w := s.State.Waiting
			if w == nil || (w.Reason != ReasonErrImagePull && w.Reason != ReasonImagePullBackOff) {
				continue
			}
			// The spec's image, as the plan matched it at admission; the
			// status may name it otherwise (normalised, or a digest).
			img, ok := imageOf(p, s.Name)
			if !ok {
				continue
			}
			v.Failing = append(v.Failing, Failure{Container: s.Name, Image: img, Reason: w.Reason})
		}
	}
	return v
}

// imageOf returns the image of the init container or container named name.
func imageOf(p *corev1.Pod, name string) (string, bool) {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			if c.Name == name {
				return c.Image, true
			}
		}
	}
	return "", false
}

// planPod is what the plan reads of the Pod, and the images that failed.
func (p *Pod) planPod() (plan.Pod, []string) {
	failing := make([]string, len(p.Failing))
	for i, f := range p.Failing {
		failing[i] = f.Image
	}
	return plan.Pod{Images: p.Images, PullSecrets: p.PullSecrets, Labels: p.Labels}, failing
}

// sameInputs tells whether a and b are the same to the decision: the same
// Pod, images, pull secrets, labels and failing images (whatever the
// waiting reason).
func sameInputs(a, b *Pod) bool {
	if a.UID != b.UID || !slices.Equal(a.Images, b.Images) || !slices.Equal(a.PullSecrets, b.PullSecrets) ||
		!maps.Equal(a.Labels, b.Labels) || len(a.Failing) != len(b.Failing) {
		return false
	}
	for i := range a.Failing {
		if a.Failing[i].Container != b.Failing[i].Container || a.Failing[i].Image != b.Failing[i].Image {
			return false
		}
	}
	return true
}

// failureOf returns how image failed, for the Event.
func (p *Pod) failureOf(image string) Failure {
	for _, f := range p.Failing {
		if f.Image == image {
			return f
		}
	}
	return Failure{Image: image}
}

// recreators are the controllers that make a new Pod when one of theirs
// is evicted, by group and kind.
var recreators = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "ReplicaSet"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "batch", Kind: "Job"}:        true,
}

// Recreator returns the controller that will make the Pod again if it is
// evicted, or nil for a Pod that nothing recreates (a bare Pod, a static
// Pod's mirror, a Pod of another controller).
func (p *Pod) Recreator() *metav1.OwnerReference {
	for i := range p.OwnerReferences {
		ref := &p.OwnerReferences[i]
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return nil
		}
		if recreators[gv.WithKind(ref.Kind).GroupKind()] {
			return ref
		}
		return nil
	}
	return nil
}

// ownerString names an owner for a person: "ReplicaSet web-7d4b9".
func ownerString(ref *metav1.OwnerReference) string {
	return fmt.Sprintf("%s %s", ref.Kind, ref.Name)
}
