package plan

import "github.com/regcred/regcred/pkg/registries"

// Lack is a pull secret a Pod lacks for an image that failed to pull.
type Lack struct {
	// Image is the image, as the Pod names it.
	Image    string
	Registry *registries.Registry
	// Secret is the pull secret the Pod would carry for the image if it
	// were admitted now.
	Secret string
}

// Lacking says, of the images of a Pod that failed to pull, which ones a
// configured registry serves in the Pod's namespace with a pull secret the
// Pod does not carry: exactly those for which the Pod, admitted now, would
// get a secret it does not have (ForPod, with its exclusions, opt-outs and
// policies). An image whose registry's secret the Pod already carries is
// never reported: it failed for another reason (a wrong password, a
// missing image), which a new Pod would not fix. failing names images of
// pod.Images; others are ignored. Each image is reported once, in the
// Pod's order.
func Lacking(set *registries.Set, pod Pod, failing []string, ns Namespace, ex Exclusions) []Lack {
	if len(failing) == 0 {
		return nil
	}
	failed := make(map[string]bool, len(failing))
	for _, img := range failing {
		failed[img] = true
	}
	p := ForPod(set, pod, ns, ex)
	if p.Skipped != "" {
		return nil
	}
	var out []Lack
	for _, d := range p.Images {
		if !failed[d.Image] {
			continue
		}
		switch d.Reason {
		case Injected, SharedSecret:
			failed[d.Image] = false // once
			out = append(out, Lack{Image: d.Image, Registry: d.Registry, Secret: d.Secret})
		}
	}
	return out
}
