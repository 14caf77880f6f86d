package admission

import (
	"github.com/regcred/regcred/pkg/jsonscan"
	"github.com/regcred/regcred/pkg/plan"
)

// podView is the part of a Pod the handler reads. Decoding into it instead
// of a corev1.Pod skips everything else the Pod holds. readPod reads it
// in the same pass as the review; its JSON tags say what it reads, as
// sigs.k8s.io/json would (the tests hold readPod to that).
type podView struct {
	// Metadata is nil when the object has none (only hand-made requests).
	Metadata *metaView `json:"metadata"`
	Spec     struct {
		Containers          []containerView `json:"containers"`
		InitContainers      []containerView `json:"initContainers"`
		EphemeralContainers []containerView `json:"ephemeralContainers"`
		ImagePullSecrets    []secretRef     `json:"imagePullSecrets"`
		Volumes             []volumeView    `json:"volumes"`
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

// volumeView is what the handler reads of a volume: the image of an image
// volume, which the kubelet pulls with the Pod's imagePullSecrets as it
// pulls a container's. A struct, not a pointer, so that reading a volume
// allocates nothing; null leaves it as it was, as encoding/json does.
type volumeView struct {
	Image struct {
		Reference string `json:"reference"`
	} `json:"image"`
}

type secretRef struct {
	Name string `json:"name"`
}

func decodePod(raw []byte) (*podView, error) {
	var p podView
	r := jsonscan.NewReader(raw)
	readPod(r, &p)
	if err := r.End(); err != nil {
		return nil, err
	}
	return &p, nil
}

// readPod reads the Pod that comes next in r. Field names are
// case-sensitive, as in Kubernetes (unlike encoding/json).
func readPod(r *jsonscan.Reader, p *podView) {
	for m := r.Object(); m.Next(); {
		switch string(r.Key()) {
		case "metadata":
			if r.Peek() == jsonscan.Null {
				r.Skip()
				p.Metadata = nil
				continue
			}
			if p.Metadata == nil {
				p.Metadata = &metaView{}
			}
			readMeta(r, p.Metadata)
		case "spec":
			readSpec(r, p)
		default:
			r.Skip()
		}
	}
}

func readMeta(r *jsonscan.Reader, m *metaView) {
	for it := r.Object(); it.Next(); {
		switch string(r.Key()) {
		case "name":
			r.ReadString(&m.Name)
		case "generateName":
			r.ReadString(&m.GenerateName)
		case "labels":
			r.ReadStringMap(&m.Labels)
		case "annotations":
			r.ReadStringMap(&m.Annotations)
		default:
			r.Skip()
		}
	}
}

func readSpec(r *jsonscan.Reader, p *podView) {
	for m := r.Object(); m.Next(); {
		switch string(r.Key()) {
		case "containers":
			jsonscan.ReadSlice(r, &p.Spec.Containers, readContainer)
		case "initContainers":
			jsonscan.ReadSlice(r, &p.Spec.InitContainers, readContainer)
		case "ephemeralContainers":
			jsonscan.ReadSlice(r, &p.Spec.EphemeralContainers, readContainer)
		case "imagePullSecrets":
			jsonscan.ReadSlice(r, &p.Spec.ImagePullSecrets, readSecretRef)
		case "volumes":
			jsonscan.ReadSlice(r, &p.Spec.Volumes, readVolume)
		default:
			r.Skip()
		}
	}
}

func readContainer(r *jsonscan.Reader, c *containerView) {
	for m := r.Object(); m.Next(); {
		if string(r.Key()) == "image" {
			r.ReadString(&c.Image)
		} else {
			r.Skip()
		}
	}
}

func readVolume(r *jsonscan.Reader, v *volumeView) {
	for m := r.Object(); m.Next(); {
		if string(r.Key()) != "image" {
			r.Skip()
			continue
		}
		for it := r.Object(); it.Next(); {
			if string(r.Key()) == "reference" {
				r.ReadString(&v.Image.Reference)
			} else {
				r.Skip()
			}
		}
	}
}

func readSecretRef(r *jsonscan.Reader, s *secretRef) {
	for m := r.Object(); m.Next(); {
		if string(r.Key()) == "name" {
			r.ReadString(&s.Name)
		} else {
			r.Skip()
		}
	}
}

func (p *podView) meta() *metaView {
	if p.Metadata == nil {
		return &metaView{}
	}
	return p.Metadata
}

// images returns the Pod's images in order, without empty ones: init
// containers, containers, ephemeral containers, then image volumes (last,
// so that a Pod without them reads as it always did). `regcred explain`
// names them in the same order (pkg/cli, containers).
func (p *podView) images() []string {
	n := len(p.Spec.Containers) + len(p.Spec.InitContainers) + len(p.Spec.EphemeralContainers)
	for _, v := range p.Spec.Volumes {
		if v.Image.Reference != "" {
			n++
		}
	}
	out := make([]string, 0, n)
	for _, cs := range [][]containerView{p.Spec.InitContainers, p.Spec.Containers, p.Spec.EphemeralContainers} {
		for _, c := range cs {
			if c.Image != "" {
				out = append(out, c.Image)
			}
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Image.Reference != "" {
			out = append(out, v.Image.Reference)
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
