package pullsecret

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Labels and annotations of the Secrets regcred manages.
const (
	// LabelManagedBy marks a Secret as regcred's; only such Secrets are cached.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "regcred"
	// LabelRegistry holds the name of the registry a Secret serves.
	LabelRegistry = "regcred.io/registry"
	// AnnotationExpiresAt holds, for tokens that expire, when the Secret's
	// credential stops working (RFC 3339).
	AnnotationExpiresAt = "regcred.io/expires-at"
)

// ManagedSelector selects the Secrets regcred manages.
func ManagedSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})
}

// Want is the content a managed pull secret must have.
type Want struct {
	// Name is the Secret's name; Registry the registry it serves.
	Name     string
	Registry string
	// Data is the .dockerconfigjson.
	Data []byte
	// ExpiresAt is when Data stops working; zero if never.
	ExpiresAt time.Time
	// Hosts are the image hosts Data serves, for a registry whose
	// credential depends on the host (a glob ECR registry); nil otherwise.
	Hosts []string
	// Source is what Data's auths keys are written from, short of the
	// hosts: the registry's address (host or host glob, and path prefix).
	// Two Wants of one Source differ only in their tokens and hosts.
	Source string
	// Widen, set when Hosts is, renders the same pull secret serving more
	// hosts besides: a write never drops a host the index records, even
	// when another replica added it a moment before.
	Widen func(ctx context.Context, hosts []string) (*Want, error)
	// HostPattern, set when Hosts is, maps an image host to the key it is
	// served under (a glob ECR registry's: the glob with the host's
	// region): hosts of one pattern are served alike, whichever of them a
	// secret was written for.
	HostPattern func(host string) string

	// version and shape memoise Version and Shape: a Want is not modified
	// once made, and one serves every admission until its credential
	// changes.
	version, shape atomic.Pointer[string]
}

// Version identifies the content: a digest of what regcred writes, short
// and one-way (the index of pull secrets and the Secret's annotation hold
// it, never a credential).
func (w *Want) Version() string {
	if v := w.version.Load(); v != nil {
		return *v
	}
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "regcred pull secret\x00%s\x00%s\x00%d\x00%s\x00", w.Name, w.Registry, w.ExpiresAt.Unix(), strings.Join(w.Hosts, ","))
	_, _ = h.Write(w.Data)
	v := hex.EncodeToString(h.Sum(nil)[:12])
	w.version.Store(&v)
	return v
}

// Shape identifies the content short of its tokens and hosts: the name,
// the registry and the Source. Of two contents of one shape, the one
// whose token lives longer serves as well as the other; of two shapes,
// only the Want's own serves (the registry's address changed).
func (w *Want) Shape() string {
	if v := w.shape.Load(); v != nil {
		return *v
	}
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "regcred pull secret shape\x00%s\x00%s\x00%s", w.Name, w.Registry, w.Source)
	v := hex.EncodeToString(h.Sum(nil)[:4])
	w.shape.Store(&v)
	return v
}

// IsManaged reports whether regcred manages s.
func IsManaged(s *corev1.Secret) bool {
	return s.Labels[LabelManagedBy] == ManagedBy && s.Labels[LabelRegistry] != ""
}

// ExpiresAt returns the expiry recorded on a managed Secret, zero if none.
func ExpiresAt(s *corev1.Secret) time.Time {
	t, _ := time.Parse(time.RFC3339, s.Annotations[AnnotationExpiresAt])
	return t
}

// ExpiresAtString is ExpiresAt as the annotation writes it; empty if never.
func (w *Want) ExpiresAtString() string {
	if w.ExpiresAt.IsZero() {
		return ""
	}
	return w.ExpiresAt.UTC().Format(time.RFC3339)
}

// Secret returns the Secret w describes in namespace.
func (w *Want) Secret(namespace string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: namespace}}
	w.apply(s)
	return s
}

// apply sets on s (a copy the caller owns) what w asks for, keeping
// labels and annotations others added.
func (w *Want) apply(s *corev1.Secret) {
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[LabelManagedBy] = ManagedBy
	s.Labels[LabelRegistry] = w.Registry
	s.Type = corev1.SecretTypeDockerConfigJson
	s.Data = map[string][]byte{corev1.DockerConfigJsonKey: w.Data}
	if at := w.ExpiresAtString(); at != "" {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[AnnotationExpiresAt] = at
	} else {
		delete(s.Annotations, AnnotationExpiresAt)
	}
}

// UnionHosts returns the hosts of a and b, sorted, each once: those a
// pull secret must serve when more are asked of it than it serves.
func UnionHosts(a, b []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))
}

// ServedBy reports whether a secret written for hosts serves every host
// of w's: for each, one of hosts of the same pattern (HostPattern), or
// the host itself.
func (w *Want) ServedBy(hosts []string) bool { return covers(hosts, w.Hosts, w.HostPattern) }

// Serves reports whether w serves every one of hosts (see ServedBy).
func (w *Want) Serves(hosts []string) bool { return covers(w.Hosts, hosts, w.HostPattern) }

// covers reports whether has holds, for every host of want, one of the
// same pattern.
func covers(has, want []string, pattern func(string) string) bool {
	if pattern == nil {
		return ServesHosts(has, want)
	}
	for _, h := range want {
		if slices.Contains(has, h) {
			continue // the host itself, as an admission's usually is: no pattern to work out
		}
		p := pattern(h)
		if !slices.ContainsFunc(has, func(g string) bool { return pattern(g) == p }) {
			return false
		}
	}
	return true
}

// ServesHosts reports whether hosts holds every one of want.
func ServesHosts(hosts, want []string) bool {
	for _, h := range want {
		if !slices.Contains(hosts, h) {
			return false
		}
	}
	return true
}

// Exact reports whether w is a registry's exact variant (see AuthKeys).
func (w *Want) Exact() bool { return strings.HasSuffix(w.Name, ExactSuffix) }
