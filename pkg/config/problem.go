package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a config. Where it is (the registry and
// the field) is data, so that the status report, `regcred validate -o json`
// and events can use it without reading it back out of a message. No
// message quotes a credential.
type Problem struct {
	// Registry is the registry's name; empty for a problem of the whole
	// config, or of a registry without a usable name.
	Registry string `json:"registry,omitempty"`
	// Index is the registry's position in the list, nil for a problem of
	// the whole config. It tells apart registries with no or the same name.
	Index *int `json:"index,omitempty"`
	// Field is the field's path within the registry (or the config), such
	// as "ecr.accessKeyID"; empty for the registry as a whole.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// ambiguous is set when another registry has the same name, so that
	// the label names the position too.
	ambiguous bool
}

// Where labels the problem's registry: `registry "hub"`, `registries[2]`
// when it has no name, or both when its name is not unique.
func (p Problem) Where() string {
	switch {
	case p.Index == nil:
		return ""
	case p.Registry == "":
		return fmt.Sprintf("registries[%d]", *p.Index)
	case p.ambiguous:
		return fmt.Sprintf("registry %q (registries[%d])", p.Registry, *p.Index)
	}
	return fmt.Sprintf("registry %q", p.Registry)
}

func (p Problem) Error() string {
	parts := make([]string, 0, 3)
	for _, s := range []string{p.Where(), p.Field, p.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// Problems is every problem found in a config. As an error it lists them
// one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns ps as an error, or nil when there is none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// ByRegistry groups the problems by registry name; problems of the whole
// config, or of a registry without a name, are under "".
func (ps Problems) ByRegistry() map[string][]Problem {
	out := map[string][]Problem{}
	for _, p := range ps {
		out[p.Registry] = append(out[p.Registry], p)
	}
	return out
}

// ProblemsOf returns the problems an error carries. An error that is not
// made of Problems becomes one problem of the whole config.
func ProblemsOf(err error) Problems {
	if err == nil {
		return nil
	}
	var ps Problems
	if errors.As(err, &ps) {
		return ps
	}
	var p Problem
	if errors.As(err, &p) {
		return Problems{p}
	}
	return Problems{{Message: err.Error()}}
}

// Reporter collects the problems of one registry.
type Reporter struct {
	name      string
	index     int
	ambiguous bool
	problems  *Problems
}

// NewReporter returns a Reporter for the registry at index, adding to ps.
func NewReporter(ps *Problems, index int, name string) *Reporter {
	return &Reporter{name: name, index: index, problems: ps}
}

// Fail records a problem of field (empty: the registry as a whole).
func (r *Reporter) Fail(field, msg string) {
	i := r.index
	*r.problems = append(*r.problems, Problem{Registry: r.name, Index: &i, Field: field, Message: msg, ambiguous: r.ambiguous})
}

// Failf records a problem of field with a formatted message.
func (r *Reporter) Failf(field, format string, args ...any) {
	r.Fail(field, fmt.Sprintf(format, args...))
}

// Reporter returns a Reporter for the registry at index i, adding to ps.
func (c *Config) Reporter(ps *Problems, i int) *Reporter {
	name := c.Registries[i].Name
	rep := NewReporter(ps, i, name)
	for j := range c.Registries {
		if j != i && name != "" && c.Registries[j].Name == name {
			rep.ambiguous = true
			break
		}
	}
	return rep
}

// fieldOrder ranks a registry's fields as the README documents them, so
// that problems read in the order of the config.
var fieldOrder = []string{"name", "type", "url", "default", "username", "password", "ecr", "connection", "caCert", "clusters", "pullSecret", "namespaceSelector"}

func fieldRank(field string) int {
	top, _, _ := strings.Cut(field, ".")
	top, _, _ = strings.Cut(top, "[")
	for i, f := range fieldOrder {
		if f == top {
			return i
		}
	}
	return len(fieldOrder)
}

// Sort orders the problems as the config reads: those of the whole config
// first, then by registry position and field.
func (ps Problems) Sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		switch {
		case a.Index == nil && b.Index == nil:
			return 0
		case a.Index == nil:
			return -1
		case b.Index == nil:
			return 1
		case *a.Index != *b.Index:
			return *a.Index - *b.Index
		}
		return fieldRank(a.Field) - fieldRank(b.Field)
	})
}
