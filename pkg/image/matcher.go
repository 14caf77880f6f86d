package image

import (
	"sort"
	"strings"
)

// Matcher finds the registry that serves an image. It is built once per
// config and is safe for concurrent use; a lookup is one map access and a
// scan of the prefixes registered for that host.
type Matcher[T any] struct {
	byHost map[string][]entry[T]
}

type entry[T any] struct {
	prefix string
	value  T
}

// NewMatcher returns an empty matcher.
func NewMatcher[T any]() *Matcher[T] {
	return &Matcher[T]{byHost: map[string][]entry[T]{}}
}

// Add registers value at loc. It reports false, and changes nothing, when a
// value is already registered at the same location.
func (m *Matcher[T]) Add(loc Location, value T) bool {
	entries := m.byHost[loc.Host]
	for _, e := range entries {
		if e.prefix == loc.Prefix {
			return false
		}
	}
	entries = append(entries, entry[T]{prefix: loc.Prefix, value: value})
	// Longest prefix first, so that the first hit is the most specific.
	sort.SliceStable(entries, func(i, j int) bool { return len(entries[i].prefix) > len(entries[j].prefix) })
	m.byHost[loc.Host] = entries
	return true
}

// Match returns the value registered at the most specific location that
// serves ref. The host must be equal, letter case included, as for the
// kubelet; a prefix serves the repository of that name and everything below
// it, never a sibling that merely starts with the same characters.
func (m *Matcher[T]) Match(ref Ref) (T, bool) {
	for _, e := range m.byHost[ref.Host] {
		if e.prefix == "" || ref.Path == e.prefix ||
			(len(ref.Path) > len(e.prefix) && ref.Path[len(e.prefix)] == '/' && strings.HasPrefix(ref.Path, e.prefix)) {
			return e.value, true
		}
	}
	var zero T
	return zero, false
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
