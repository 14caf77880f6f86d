package image

import (
	"strings"
)

// Matcher finds the registry that serves an image. It is built once per
// config and is safe for concurrent use: a lookup is one map access for
// exact hosts and a scan of the (few) glob locations.
//
// Where several locations serve an image, the one whose pull-secret key the
// kubelet tries first wins: keys are tried in reverse lexical order, so a
// longer prefix wins on a host, and an exact host wins over a glob
// (`registry.example.com` sorts after `*.example.com`).
type Matcher[T any] struct {
	byHost map[string][]entry[T]
	globs  []entry[T]
}

type entry[T any] struct {
	loc   Location
	value T
}

// rank orders locations as the kubelet orders their keys.
func (e entry[T]) rank() string {
	if e.loc.Prefix == "" {
		return e.loc.Host
	}
	return e.loc.Host + "/" + e.loc.Prefix + "/"
}

// NewMatcher returns an empty matcher.
func NewMatcher[T any]() *Matcher[T] {
	return &Matcher[T]{byHost: map[string][]entry[T]{}}
}

// Add registers value at loc. It reports false, and changes nothing, when a
// value is already registered at the same location.
func (m *Matcher[T]) Add(loc Location, value T) bool {
	list := m.byHost[loc.Host]
	if loc.Glob() {
		list = m.globs
	}
	for _, e := range list {
		if e.loc == loc {
			return false
		}
	}
	e := entry[T]{loc: loc, value: value}
	if loc.Glob() {
		m.globs = append(m.globs, e)
	} else {
		m.byHost[loc.Host] = append(list, e)
	}
	return true
}

// Match returns the value registered at the location that serves ref and
// whose key the kubelet tries first. The host must match letter case
// included, as for the kubelet; a prefix serves the repository of that name
// and everything below it, never a sibling that merely starts with the same
// characters.
func (m *Matcher[T]) Match(ref Ref) (T, bool) {
	var best *entry[T]
	consider := func(e *entry[T]) {
		if e.loc.Serves(ref) && (best == nil || e.rank() > best.rank()) {
			best = e
		}
	}
	for i := range m.byHost[ref.Host] {
		consider(&m.byHost[ref.Host][i])
	}
	for i := range m.globs {
		consider(&m.globs[i])
	}
	if best == nil {
		var zero T
		return zero, false
	}
	return best.value, true
}

// MatchFoldingCase is Match with the host compared without regard to case.
// It exists to explain a miss: the kubelet would not find credentials for
// "Quay.io/x" under "quay.io", so regcred injects nothing and says why.
func (m *Matcher[T]) MatchFoldingCase(ref Ref) (T, bool) {
	lower := strings.ToLower(ref.Host)
	if IsDockerHub(lower) {
		lower = DockerHub
	}
	return m.Match(Ref{Host: lower, Path: ref.Path})
}
