package plan

import (
	"fmt"

	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/registries"
)

// First is, for one image, the pull secret whose credential the kubelet
// will try first, by its own rules, as far as regcred knows the keys of the
// Pod's secrets: its own secrets' keys, and for an admin's secret named in
// image-pull-secret mode, the keys `kubectl create secret docker-registry`
// would write for the registry's URL. Secrets regcred knows nothing of are
// left out.
type First struct {
	// Secret is empty when none of the secrets regcred knows serves the
	// image: the kubelet pulls anonymously, or with a secret regcred does
	// not know.
	Secret string
	// Registries hold the secret's credentials (several for an admin's
	// secret that registries share).
	Registries []*registries.Registry
}

// KubeletFirst returns, per image, what the kubelet will try first with the
// Pod's imagePullSecrets as they will be (in order).
func KubeletFirst(set *registries.Set, images, pullSecrets []string) []First {
	var ring image.Keyring
	added := make(map[string]bool, len(pullSecrets))
	for _, name := range pullSecrets {
		// A secret named again adds its keys behind its own: the first
		// credential of no image changes.
		if added[name] {
			continue
		}
		added[name] = true
		for _, of := range set.BySecret(name) {
			ring.AddKeys(name, of.Keys)
		}
	}
	out := make([]First, len(images))
	// An image the Pod names again has the same answer; the registries of
	// a secret are the same for every image.
	seen := make(map[string]First, len(images))
	bySecret := map[string][]*registries.Registry{}
	for i, img := range images {
		if f, ok := seen[img]; ok {
			out[i] = f
			continue
		}
		if c, ok := ring.First(img); ok {
			out[i].Secret = c.Source
			rs, known := bySecret[c.Source]
			if !known {
				for _, of := range set.BySecret(c.Source) {
					rs = append(rs, of.Registry)
				}
				bySecret[c.Source] = rs
			}
			out[i].Registries = rs
		}
		seen[img] = out[i]
	}
	return out
}

// Shadowed returns a warning for each image whose first credential, by the
// kubelet's rules, is not the planned one: another secret's keys shadow its
// registry's, or (for an image no registry serves) a registry's credentials
// would be sent to it. final are the Pod's imagePullSecrets as they will
// be: a planned secret that could not be injected was warned about already.
func Shadowed(p Plan, firsts []First, final []string) []string {
	carried := make(map[string]bool, len(final))
	for _, s := range final {
		carried[s] = true
	}
	var warnings []string
	for i, d := range p.Images {
		if i >= len(firsts) {
			break
		}
		f := firsts[i]
		switch {
		case d.Served && carried[d.Secret] && !d.servedBy(f.Secret):
			if f.Secret == "" {
				warnings = append(warnings, fmt.Sprintf("regcred: image %q: the kubelet will not find registry %q's credentials in secret %q (no key of it matches the image)", d.Image, d.Registry.Name, d.Secret))
			} else {
				warnings = append(warnings, fmt.Sprintf("regcred: image %q: the kubelet will try secret %q first (registry %s), not registry %q's secret %q", d.Image, f.Secret, names(f.Registries), d.Registry.Name, d.Secret))
			}
		case d.Registry == nil && f.Secret != "":
			warnings = append(warnings, fmt.Sprintf("regcred: image %q is served by no registry, yet the kubelet will try secret %q (registry %s) for it", d.Image, f.Secret, names(f.Registries)))
		}
	}
	return warnings
}

func names(rs []*registries.Registry) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", r.Name)
	}
	return out
}
