package cli

import (
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/registries"
)

// explainResult is what explain says of a Pod or a workload.
type explainResult struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Live is set for an object read from the cluster, unset for a
	// manifest's.
	Live bool `json:"live"`
	// NamespaceLabels are the labels the decision used; nil when they
	// could not be read.
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	// Cluster is this cluster's name, for the registries' cluster policies.
	Cluster string `json:"cluster"`
	// Config says where the config was read.
	Config string `json:"config"`
	// Skipped is set when regcred leaves the Pod alone altogether.
	Skipped     plan.Reason     `json:"skipped,omitempty"`
	SkipDetail  string          `json:"skipDetail,omitempty"`
	Images      []explainImage  `json:"images"`
	PullSecrets []explainSecret `json:"imagePullSecrets"`
	// Notes are what else the admin should know.
	Notes []string `json:"notes,omitempty"`
}

// explainImage is the decision for one image.
type explainImage struct {
	// Container runs the image; empty for an image volume's.
	Container string `json:"container"`
	// Volume is the image volume that mounts the image, if one does.
	Volume string `json:"volume,omitempty"`
	Image  string `json:"image"`
	// Registry serves the image; empty when none does.
	Registry string `json:"registry,omitempty"`
	// Secret is the registry's pull secret.
	Secret string `json:"secret,omitempty"`
	// Injected is set when the Pod carries (or will carry) the registry's
	// secret.
	Injected bool        `json:"injected"`
	Reason   plan.Reason `json:"reason"`
	Detail   string      `json:"detail"`
	// KubeletFirst names the credential the kubelet will try first for
	// this image: see kubeletFirst. Null until it is known.
	KubeletFirst *string `json:"kubeletFirst"`
}

// explainSecret is one of the Pod's imagePullSecrets.
type explainSecret struct {
	Name string `json:"name"`
	// InjectedBy is "regcred" for a secret regcred injected (its
	// annotation regcred.io/injected), empty otherwise.
	InjectedBy string `json:"injectedBy,omitempty"`
	// Registry is the registry regcred injected it for.
	Registry string `json:"registry,omitempty"`
	// Planned is set for a secret the webhook would add to a Pod created
	// now (a workload's or a manifest's, which has not met it yet).
	Planned bool `json:"planned,omitempty"`
}

// container is one image of the Pod and what pulls it: the container that
// runs it, or (volume set) the image volume that mounts it.
type container struct {
	name, image string
	volume      bool
}

// containers lists the Pod's images in the order the webhook reads them
// (admission.PlanInput): init containers, containers, ephemeral
// containers, then image volumes, without empty ones.
func containers(spec *corev1.PodSpec) []container {
	var out []container
	for _, c := range spec.InitContainers {
		out = append(out, container{name: c.Name, image: c.Image})
	}
	for _, c := range spec.Containers {
		out = append(out, container{name: c.Name, image: c.Image})
	}
	for _, c := range spec.EphemeralContainers {
		out = append(out, container{name: c.Name, image: c.Image})
	}
	for _, v := range spec.Volumes {
		if v.Image != nil {
			out = append(out, container{name: v.Name, image: v.Image.Reference, volume: true})
		}
	}
	return slices.DeleteFunc(out, func(c container) bool { return c.image == "" })
}

// explain decides for the target with plan.ForPod, as the webhook does.
// For a Pod that regcred already admitted, the secrets it injected (its
// annotation) are taken out of the Pod first, so that the decision is the
// one made at its admission, made again with today's config.
func explain(set *registries.Set, t *target, ns plan.Namespace, ex plan.Exclusions, cluster string) explainResult {
	res := explainResult{Kind: t.Kind, Name: t.Name, Namespace: t.Namespace, Live: t.Live, NamespaceLabels: ns.Labels, Cluster: cluster}
	if ns.LabelsUnknown {
		res.NamespaceLabels = nil
	}
	raw, err := json.Marshal(&t.Pod)
	if err != nil {
		res.Notes = append(res.Notes, "cannot read the Pod: "+err.Error())
		return res
	}
	pod, err := admission.PlanInput(raw)
	if err != nil {
		res.Notes = append(res.Notes, "cannot read the Pod: "+err.Error())
		return res
	}
	injected := admission.ParseInjected(t.Pod.Annotations[admission.AnnotationInjected])
	byRegcred := map[string]string{}
	for _, in := range injected {
		byRegcred[in.Secret] = in.Registry
	}
	listed := pod.PullSecrets
	pod.PullSecrets = slices.DeleteFunc(slices.Clone(listed), func(s string) bool { _, ok := byRegcred[s]; return ok })

	p := plan.ForPod(set, pod, ns, ex)
	res.Skipped, res.SkipDetail = p.Skipped, p.SkipDetail

	// The Pod's imagePullSecrets: as it is, or as the webhook will make it.
	final := slices.Clone(listed)
	for _, s := range listed {
		es := explainSecret{Name: s}
		if r, ok := byRegcred[s]; ok {
			es.InjectedBy, es.Registry = "regcred", r
		}
		res.PullSecrets = append(res.PullSecrets, es)
	}
	planned := map[string]bool{}
	admitted := t.Live && t.Kind == "Pod"
	for _, a := range p.Add {
		planned[a.Secret] = true
		if admitted || slices.Contains(listed, a.Secret) {
			continue // admitted already: the Pod carries what it carries
		}
		final = append(final, a.Secret)
		res.PullSecrets = append(res.PullSecrets, explainSecret{Name: a.Secret, InjectedBy: "regcred", Registry: a.Registry.Name, Planned: true})
	}

	cs := containers(&t.Pod.Spec)
	firsts := plan.KubeletFirst(set, pod.Images, final)
	for i, img := range pod.Images {
		ei := explainImage{Image: img}
		switch {
		case i >= len(cs) || cs[i].image != img:
		case cs[i].volume:
			ei.Volume = cs[i].name
		default:
			ei.Container = cs[i].name
		}
		if p.Skipped != "" {
			if m := set.Match(img); m.Registry != nil {
				ei.Registry, ei.Secret = m.Registry.Name, m.Registry.SecretName
			}
			ei.Reason, ei.Detail = p.Skipped, p.SkipDetail
		} else {
			d := p.Images[i]
			if d.Registry != nil {
				ei.Registry = d.Registry.Name
			}
			// Served as the webhook decides, and carried by the Pod (an
			// admitted Pod may lack what today's config would inject).
			ei.Secret, ei.Reason, ei.Detail = d.Secret, d.Reason, d.Detail
			if d.Reason == plan.ClusterPolicy && cluster != "" {
				ei.Detail = fmt.Sprintf("registry %q does not inject in cluster %q (its cluster policy)", ei.Registry, cluster)
			}
			ei.Injected = d.Served && slices.Contains(final, d.Secret)
		}
		if s := firsts[i].Secret; s != "" {
			ei.KubeletFirst = &s
		}
		res.Images = append(res.Images, ei)
	}
	res.Notes = append(res.Notes, admittedNotes(admitted, injected, listed, p, planned)...)
	return res
}

// admittedNotes compares what regcred injected into a Pod at its admission
// with what today's config decides.
func admittedNotes(admitted bool, injected []admission.InjectedSecret, listed []string, p plan.Plan, planned map[string]bool) []string {
	if !admitted {
		return nil
	}
	var notes []string
	if len(injected) == 0 && len(p.Add) > 0 {
		missing := []string{}
		for _, a := range p.Add {
			if !slices.Contains(listed, a.Secret) {
				missing = append(missing, a.Secret)
			}
		}
		if len(missing) > 0 {
			notes = append(notes, fmt.Sprintf("regcred injected nothing into this Pod, but would inject %q into a Pod created now: the Pod was created before the config served it, while regcred was unavailable (the webhook fails open), or regcred could not read the namespace; recreate the Pod", missing))
		}
	}
	for _, in := range injected {
		if !planned[in.Secret] {
			notes = append(notes, fmt.Sprintf("regcred injected %q (registry %q) when the Pod was created; today's config would not", in.Secret, in.Registry))
		}
	}
	return notes
}
