package plan

import (
	"fmt"
	"strconv"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/registries"
)

// LabelInject set to "false" on a Pod or its namespace opts it out of
// injection.
const LabelInject = "regcred.io/inject"

// Pod is what the plan reads of a Pod.
type Pod struct {
	// Images are the Pod's images: init containers, containers,
	// ephemeral containers, then image volumes.
	Images []string
	// PullSecrets are the names in the Pod's imagePullSecrets, in order.
	PullSecrets []string
	// Labels are the Pod's labels.
	Labels map[string]string
}

// Namespace is what the plan knows of the Pod's namespace.
type Namespace struct {
	Name   string
	Labels map[string]string
	// LabelsUnknown is set when the labels could not be read: a registry
	// scoped by a namespaceSelector then injects nothing (fail closed).
	LabelsUnknown bool
}

// Exclusions are the namespaces regcred never serves: kube-system, its
// own, and those the admin excluded.
type Exclusions map[string]bool

// Reason says why an image is served or not.
type Reason string

// The reasons.
const (
	// Injected: the registry's secret is added to the Pod.
	Injected Reason = "injected"
	// AlreadyListed: the Pod already names the registry's secret.
	AlreadyListed Reason = "already-listed"
	// SharedSecret: another image of the Pod brought the same secret.
	SharedSecret Reason = "shared"
	// NoRegistry: no configured registry serves the image.
	NoRegistry Reason = "no-registry"
	// InvalidReference: the image is not a valid reference.
	InvalidReference Reason = "invalid-reference"
	// HostCase: the image's host is written in another letter case than a
	// registry's; the kubelet would not find its credentials.
	HostCase Reason = "host-case"
	// ClusterPolicy: the registry's cluster policy leaves this cluster out.
	ClusterPolicy Reason = "cluster-policy"
	// NamespaceNotSelected: the registry's namespaceSelector leaves the
	// namespace out.
	NamespaceNotSelected Reason = "namespace-not-selected"
	// NamespaceUnknown: the namespace's labels could not be read and the
	// registry is scoped by them.
	NamespaceUnknown Reason = "namespace-unknown"
	// NamespaceExcluded: regcred never serves this namespace.
	NamespaceExcluded Reason = "namespace-excluded"
	// NamespaceOptedOut: the namespace is labelled regcred.io/inject=false.
	NamespaceOptedOut Reason = "namespace-opted-out"
	// PodOptedOut: the Pod is labelled regcred.io/inject=false.
	PodOptedOut Reason = "pod-opted-out"
)

// Image is the decision for one image.
type Image struct {
	Image string
	// Ref is the parsed image; zero when it did not parse.
	Ref image.Ref
	// Registry serves the image; nil when none does.
	Registry *registries.Registry
	// Secret is the registry's pull secret, when it has one.
	Secret string
	// Served is set when the Pod will carry the registry's secret.
	Served bool
	Reason Reason
	// Detail explains the reason to a person.
	Detail string
}

// Injection is a pull secret to append to the Pod.
type Injection struct {
	Secret   string
	Registry *registries.Registry
	// Exact is set for the registry's exact variant (an image of the Pod
	// is the repository named exactly like its path prefix).
	Exact bool
	// Hosts are the hosts of the Pod's images the registry serves.
	Hosts []string
}

// Plan is the decision for a Pod.
type Plan struct {
	// Skipped is set when the whole Pod is left alone; the images are then
	// not looked at.
	Skipped Reason
	// SkipDetail explains Skipped to a person.
	SkipDetail string
	Images     []Image
	// Add are the secrets to append to the Pod, in order.
	Add []Injection
	// Ensure are regcred's secrets the Pod names already (its spec, or
	// its ServiceAccount's, copied): they are not appended, but must
	// exist, and serve the Pod's hosts, as those Add names.
	Ensure []Injection
}

// ForPod decides which pull secrets a Pod gets.
func ForPod(set *registries.Set, pod Pod, ns Namespace, ex Exclusions) Plan {
	if r, detail := skipNamespace(ns, ex); r != "" {
		return Plan{Skipped: r, SkipDetail: detail}
	}
	if pod.Labels[LabelInject] == "false" {
		return Plan{Skipped: PodOptedOut, SkipDetail: "the Pod is labelled " + LabelInject + "=false"}
	}
	p := Plan{Images: make([]Image, 0, len(pod.Images))}
	listed := make(map[string]bool, len(pod.PullSecrets))
	for _, s := range pod.PullSecrets {
		listed[s] = true
	}
	matches := make([]registries.Match, len(pod.Images))
	// A registry whose exact-named repository the Pod pulls gets its exact
	// variant, which serves the rest of its images too.
	exact := map[*registries.Registry]bool{}
	// An image the Pod names again matches the same.
	byImage := make(map[string]registries.Match, len(pod.Images))
	for i, img := range pod.Images {
		m, ok := byImage[img]
		if !ok {
			m = set.Match(img)
			byImage[img] = m
		}
		matches[i] = m
		if r := m.Registry; r != nil && r.SecretFor(m.Ref) != r.SecretName {
			exact[r] = true
		}
	}
	added := map[string]bool{}
	for i, img := range pod.Images {
		d := Image{Image: img}
		m := matches[i]
		d.Ref, d.Registry = m.Ref, m.Registry
		switch {
		case m.Invalid:
			d.Reason, d.Detail = InvalidReference, m.Hint(img)
		case m.CaseOf != nil:
			d.Reason, d.Detail = HostCase, m.Hint(img)
		case m.Registry == nil:
			d.Reason, d.Detail = NoRegistry, "no configured registry serves "+m.Ref.String()
		default:
			r := m.Registry
			d.Secret = r.SecretName
			if exact[r] {
				d.Secret = r.ExactSecretName()
			}
			if listed[d.Secret] {
				d.Served, d.Reason, d.Detail = true, AlreadyListed, "the Pod already names "+strconv.Quote(d.Secret)
				if ok, _, _ := serves(r, ns); ok && r.Manages() && !added[d.Secret] {
					added[d.Secret] = true
					p.Ensure = append(p.Ensure, Injection{Secret: d.Secret, Registry: r, Exact: exact[r]})
				}
				break
			}
			if ok, reason, detail := serves(r, ns); !ok {
				d.Reason, d.Detail = reason, detail
				break
			}
			d.Served = true
			switch {
			case added[d.Secret]:
				d.Reason, d.Detail = SharedSecret, strconv.Quote(d.Secret)+" is injected for another image"
			default:
				added[d.Secret] = true
				p.Add = append(p.Add, Injection{Secret: d.Secret, Registry: r, Exact: exact[r]})
				d.Reason, d.Detail = Injected, describeInjection(r, d.Secret)
			}
		}
		p.Images = append(p.Images, d)
	}
	// A registry's main secret that the Pod names beside the exact variant
	// it gets: the kubelet tries it first for the images below the prefix,
	// so it must exist too.
	for _, m := range matches {
		if len(exact) == 0 {
			break // the common case: no registry's exact variant
		}
		r := m.Registry
		if r == nil || !exact[r] || !listed[r.SecretName] || added[r.SecretName] {
			continue
		}
		if ok, _, _ := serves(r, ns); ok && r.Manages() {
			added[r.SecretName] = true
			p.Ensure = append(p.Ensure, Injection{Secret: r.SecretName, Registry: r})
		}
	}
	// Each injection serves the hosts of its registry's images, in order,
	// each once.
	addHosts(p.Add, p.Images)
	addHosts(p.Ensure, p.Images)
	return p
}

// servedBy says whether the image's credentials are in secret: its planned
// secret, or the other variant of its registry's (the main secret and the
// exact one hold the same credentials).
func (d Image) servedBy(secret string) bool {
	if secret == d.Secret {
		return true
	}
	r := d.Registry
	return r != nil && r.ExactSecretName() != "" && (secret == r.SecretName || secret == r.ExactSecretName())
}

// addHosts gives each injection the hosts of its registry's images that
// are served, in order, each once.
func addHosts(ins []Injection, images []Image) {
	if len(ins) == 0 {
		return
	}
	byRegistry := make(map[*registries.Registry][]int, len(ins))
	for i, in := range ins {
		byRegistry[in.Registry] = append(byRegistry[in.Registry], i)
	}
	type addHost struct {
		add  int
		host string
	}
	hosts := map[addHost]bool{}
	for _, d := range images {
		if !d.Served {
			continue
		}
		for _, i := range byRegistry[d.Registry] {
			if k := (addHost{i, d.Ref.Host}); !hosts[k] {
				hosts[k] = true
				ins[i].Hosts = append(ins[i].Hosts, d.Ref.Host)
			}
		}
	}
}

// ForNamespace decides whether registry r's pull secret belongs in a
// namespace: the same rules as ForPod, for a Pod there that uses r.
func ForNamespace(r *registries.Registry, ns Namespace, ex Exclusions) (bool, Reason) {
	if reason, _ := skipNamespace(ns, ex); reason != "" {
		return false, reason
	}
	ok, reason, _ := serves(r, ns)
	return ok, reason
}

func skipNamespace(ns Namespace, ex Exclusions) (Reason, string) {
	switch {
	case ex[ns.Name]:
		return NamespaceExcluded, fmt.Sprintf("regcred never serves namespace %q", ns.Name)
	case ns.Labels[LabelInject] == "false":
		return NamespaceOptedOut, fmt.Sprintf("namespace %q is labelled %s=false", ns.Name, LabelInject)
	}
	return "", ""
}

// serves decides whether r's credentials reach a namespace.
func serves(r *registries.Registry, ns Namespace) (bool, Reason, string) {
	switch {
	case !r.Injects:
		return false, ClusterPolicy, fmt.Sprintf("registry %q's cluster policy does not inject in this cluster", r.Name)
	case r.Namespaces != nil && ns.LabelsUnknown:
		return false, NamespaceUnknown, fmt.Sprintf("cannot tell whether registry %q serves namespace %q (its labels could not be read); its credentials were not injected", r.Name, ns.Name)
	case !r.Serves(ns.Labels):
		return false, NamespaceNotSelected, fmt.Sprintf("registry %q serves only namespaces matching %s", r.Name, r.Namespaces)
	}
	return true, "", ""
}

// describeInjection is said of every image served: concatenated, as it
// is made for each image of a Pod.
func describeInjection(r *registries.Registry, secret string) string {
	whose := "regcred's"
	if r.Mode == config.ImagePullSecret {
		whose = "the admin's"
	}
	return "registry " + strconv.Quote(r.Name) + " (" + r.Location.String() + ") injects " + whose + " secret " + strconv.Quote(secret)
}
