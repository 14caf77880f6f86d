package registries

import (
	"fmt"
	"strings"
	"time"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/pullsecret"
)

// Set is an immutable, compiled config.
type Set struct {
	// Registries are in config order, the default one first.
	Registries []*Registry
	// Version identifies the config object's version (its resourceVersion).
	Version string
	// Loaded is when the set was built.
	Loaded time.Time

	byName   map[string]*Registry
	bySecret map[string][]SecretOf
	matcher  *image.Matcher[*Registry]
}

// SecretOf is a registry whose credentials a pull secret holds, and
// whether it is the registry's exact variant.
type SecretOf struct {
	Registry *Registry
	Exact    bool
	// Keys are the auths keys regcred writes for it (or an admin's
	// secret made with kubectl holds), read as the kubelet reads them.
	Keys []image.Key
}

// Empty returns a set with no registries.
func Empty() *Set {
	return &Set{byName: map[string]*Registry{}, bySecret: map[string][]SecretOf{}, matcher: image.NewMatcher[*Registry]()}
}

func (s *Set) add(r *Registry) {
	s.byName[r.Name] = r
	s.bySecret[r.SecretName] = append(s.bySecret[r.SecretName], SecretOf{Registry: r, Keys: image.ReadKeys(secretKeys(r))})
	if exact := r.ExactSecretName(); exact != "" {
		s.bySecret[exact] = append(s.bySecret[exact], SecretOf{Registry: r, Exact: true, Keys: image.ReadKeys(pullsecret.AuthKeys(r.Location, true))})
	}
	s.matcher.Add(r.Location, r)
	if r.Default {
		s.Registries = append([]*Registry{r}, s.Registries...)
	} else {
		s.Registries = append(s.Registries, r)
	}
}

// secretKeys returns the auths keys of r's pull secret. regcred's own
// holds pullsecret.AuthKeys. An admin's secret (image-pull-secret mode)
// holds what `kubectl create secret docker-registry
// --docker-server=<url>` writes: the one key, the URL exactly as the
// config writes it. For a path prefix that is harbor:8443/team-a, without
// the trailing slash regcred writes: the kubelet reads it as a character
// prefix, so it serves harbor:8443/team-a itself, and siblings such as
// harbor:8443/team-ab/app too (which the self-check then warns of).
func secretKeys(r *Registry) []string {
	if url := strings.TrimSpace(r.URL); r.Mode == config.ImagePullSecret && url != "" {
		return []string{url}
	}
	return pullsecret.AuthKeys(r.Location, false)
}

// Get returns the registry of that name, or nil.
func (s *Set) Get(name string) *Registry { return s.byName[name] }

// BySecret returns the registries whose credentials a pull secret of that
// name holds: regcred's own, or an admin's secret that image-pull-secret
// registries name (several may share one).
func (s *Set) BySecret(name string) []SecretOf { return s.bySecret[name] }

// Default returns the default registry, or nil.
func (s *Set) Default() *Registry {
	if len(s.Registries) > 0 && s.Registries[0].Default {
		return s.Registries[0]
	}
	return nil
}

// Match is the registry an image matched, or why none did.
type Match struct {
	// Registry is nil when the image matched none.
	Registry *Registry
	// Ref is the parsed image; zero when it did not parse.
	Ref image.Ref
	// Invalid is set when the image is not a valid reference.
	Invalid bool
	// CaseOf is the registry the image would match if its host were
	// written in lower case: the kubelet would not find its credentials.
	CaseOf *Registry
}

// Match finds the registry serving an image.
func (s *Set) Match(img string) Match {
	ref, err := image.Parse(img)
	if err != nil {
		return Match{Invalid: true}
	}
	if r, ok := s.matcher.Match(ref); ok {
		return Match{Registry: r, Ref: ref}
	}
	if r, ok := s.matcher.MatchFoldingCase(ref); ok {
		return Match{Ref: ref, CaseOf: r}
	}
	return Match{Ref: ref}
}

// Hint explains a miss the admin may not expect; empty otherwise.
func (m Match) Hint(img string) string {
	switch {
	case m.Invalid:
		return fmt.Sprintf("image %q is not a valid reference, so it matches no registry", img)
	case m.CaseOf != nil:
		return fmt.Sprintf("image %q names registry host %q in another letter case than registry %q (%s); the kubelet matches credentials case-sensitively, so nothing was injected: write the host in lower case", img, m.Ref.Host, m.CaseOf.Name, m.CaseOf.Location)
	}
	return ""
}
