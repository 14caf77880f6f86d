package plan

import "fmt"

// Reasons an image was planned for but will not pull with its registry's
// credentials; they come from the self-check, after the plan is carried
// out (Unserved).
const (
	// NotCarried: the registry's secret was planned, but the Pod will not
	// carry it (a Secret of its name exists and is not regcred's).
	NotCarried Reason = "not-carried"
	// KubeletTriesOther: the kubelet will try another secret's credentials first,
	// or a registry's credentials for an image no registry serves.
	KubeletTriesOther Reason = "kubelet-tries-other"
)

// Miss is an image that will not pull with a registry's credentials, or a
// Pod left alone, and why.
type Miss struct {
	// Image is empty when the whole Pod was left alone (Reason says why).
	Image string
	// Host is the image's registry host, as written; empty if it did not
	// parse.
	Host string
	// Registry is the configured registry the image matched, if any.
	Registry string
	Reason   Reason
	// Detail explains Reason to a person.
	Detail string
}

// Unserved lists what regcred could not serve in a planned Pod: each image
// (once) that will not pull with a registry's credentials, and why, given
// what the kubelet will try first (KubeletFirst) with the Pod's secrets as
// they will be (final). An image no registry serves is listed too (reason
// NoRegistry), for the log: it is the common case of a public image.
func Unserved(p Plan, firsts []First, final []string) []Miss {
	if p.Skipped != "" {
		return []Miss{{Reason: p.Skipped, Detail: p.SkipDetail}}
	}
	carried := make(map[string]bool, len(final))
	for _, s := range final {
		carried[s] = true
	}
	var out []Miss
	seen := map[string]bool{}
	for i, d := range p.Images {
		if seen[d.Image] {
			continue
		}
		m := Miss{Image: d.Image, Host: d.Ref.Host, Reason: d.Reason, Detail: d.Detail}
		if d.Registry != nil {
			m.Registry = d.Registry.Name
		}
		var first First
		if i < len(firsts) {
			first = firsts[i]
		}
		switch {
		case d.Served && !carried[d.Secret]:
			m.Reason = NotCarried
			m.Detail = fmt.Sprintf("registry %q's secret %q could not be injected", m.Registry, d.Secret)
		case d.Served && !d.servedBy(first.Secret):
			m.Reason = KubeletTriesOther
			m.Detail = fmt.Sprintf("the kubelet will not try registry %q's secret %q first", m.Registry, d.Secret)
		case d.Served:
			continue
		case d.Registry == nil && first.Secret != "":
			m.Reason = KubeletTriesOther
			m.Detail = fmt.Sprintf("served by no registry, yet the kubelet will try secret %q for it", first.Secret)
		case d.Reason == AlreadyListed || d.Reason == SharedSecret || d.Reason == Injected:
			continue
		}
		seen[d.Image] = true
		out = append(out, m)
	}
	return out
}
