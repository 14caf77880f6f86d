package admission

import (
	kjson "sigs.k8s.io/json"

	"github.com/regcred/regcred/pkg/plan"
)

// podView is the part of a Pod the handler reads. Decoding into it instead
// of a corev1.Pod skips everything else the Pod holds.
type podView struct {
	// Metadata is nil when the object has none (only hand-made requests).
	Metadata *metaView `json:"metadata"`
	Spec     struct {
		Containers          []containerView `json:"containers"`
		InitContainers      []containerView `json:"initContainers"`
		EphemeralContainers []containerView `json:"ephemeralContainers"`
		ImagePullSecrets    []secretRef     `json:"imagePullSecrets"`
	} `json:"spec"`
}

type metaView struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
}

type containerView struct {
	Image string `json:"image"`
}

type secretRef struct {
	Name string `json:"name"`
}

func decodePod(raw []byte) (*podView, error) {
	var p podView
	// Field names are case-sensitive in Kubernetes, unlike encoding/json.
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *podView) meta() *metaView {
	if p.Metadata == nil {
		return &metaView{}
	}
	return p.Metadata
}

// images returns the Pod's images in order: containers, init containers,
// ephemeral containers.
func (p *podView) images() []string {
	out := make([]string, 0, len(p.Spec.Containers)+len(p.Spec.InitContainers)+len(p.Spec.EphemeralContainers))
	for _, cs := range [][]containerView{p.Spec.InitContainers, p.Spec.Containers, p.Spec.EphemeralContainers} {
		for _, c := range cs {
			if c.Image != "" {
				out = append(out, c.Image)
			}
		}
	}
	return out
}

// displayName names the Pod in logs; a Pod made by a controller has only
// a generateName yet.
func (p *podView) displayName() string {
	m := p.meta()
	if m.Name != "" {
		return m.Name
	}
	return m.GenerateName + "<generated>"
}

// planInput is what the plan reads of the Pod.
func (p *podView) planInput() plan.Pod {
	secrets := make([]string, len(p.Spec.ImagePullSecrets))
	for i, s := range p.Spec.ImagePullSecrets {
		secrets[i] = s.Name
	}
	return plan.Pod{Images: p.images(), PullSecrets: secrets, Labels: p.meta().Labels}
}

// PlanInput reads what the plan needs of a Pod from its JSON, exactly as
// the webhook reads it at admission; `regcred explain` reads Pods and Pod
// templates with it.
func PlanInput(raw []byte) (plan.Pod, error) {
	p, err := decodePod(raw)
	if err != nil {
		return plan.Pod{}, err
	}
	return p.planInput(), nil
}
