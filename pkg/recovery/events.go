package recovery

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/regcred/regcred/pkg/plan"
)

// EventRecorder records an Event (events.k8s.io).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// The Event reasons, on the Pod.
const (
	// EventEvicted: the Pod was evicted so that its controller makes it
	// again with the pull secret.
	EventEvicted = "EvictedForPullSecret"
	// EventMissing: a Pod nothing recreates lacks a pull secret.
	EventMissing = "PullSecretMissing"
	// EventBlocked: a PodDisruptionBudget forbids the eviction for now.
	EventBlocked = "EvictionBlocked"
	// EventGaveUp: a Pod made after regcred evicted one of its
	// controller's Pods for lacking a pull secret lacks it too; evicting
	// it would not help, so regcred does not.
	EventGaveUp = "RecoveryGaveUp"
)

// why says, for a person, which images failed and which pull secret of
// which registry the Pod lacks for them. It names no credential.
func (c *Controller) why(p *Pod, lacks []plan.Lack) string {
	s := ""
	for i, l := range lacks {
		if i > 0 {
			s += "; "
		}
		f := p.failureOf(l.Image)
		s += fmt.Sprintf("image %q of container %q failed to pull (%s) and registry %q serves it, but the Pod lacks its pull secret %q",
			l.Image, f.Container, f.Reason, l.Registry.Name, l.Secret)
	}
	return s
}

// gaveUpNote says, for a person, why regcred does not evict a Pod that
// lacks secrets again, and what to check. It comes before the images: an
// Event's note is cut at maxNote.
func gaveUpNote(p *Pod, owner *metav1.OwnerReference, secrets []string) string {
	quoted := make([]string, len(secrets))
	for i, s := range secrets {
		quoted[i] = strconv.Quote(s)
	}
	return fmt.Sprintf("regcred gave up: %s made this Pod after regcred evicted one of its Pods for lacking pull secret %s, and the webhook did not give this one the secret either, so evicting it would not help. "+
		"Check whether a Secret named %s in namespace %q is not regcred's (regcred never takes one over), whether the webhook's matchConditions skip this Pod, and whether the API server reaches the webhook (failurePolicy Ignore admits Pods unchanged); then delete this Pod",
		ownerString(owner), strings.Join(quoted, " and "), strings.Join(quoted, " or "), p.Namespace)
}

// maxNote bounds an Event's note: the API server refuses more than 1 kB.
const maxNote = 1000

// event records an Event on the Pod, related to its owner if any.
func (c *Controller) event(p *Pod, owner *metav1.OwnerReference, eventtype, reason, action, note string, args ...any) {
	var related runtime.Object
	if owner != nil {
		related = &corev1.ObjectReference{APIVersion: owner.APIVersion, Kind: owner.Kind, Namespace: p.Namespace, Name: owner.Name, UID: owner.UID}
	}
	regarding := &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}
	msg := fmt.Sprintf(note, args...)
	if len(msg) > maxNote {
		msg = msg[:maxNote-3] + "..."
	}
	c.Events.Eventf(regarding, related, eventtype, reason, action, "%s", msg)
	c.Metrics.RecoveryEvent(reason)
}
