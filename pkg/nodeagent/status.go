package nodeagent

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/nodetrust/containerd"
)

// Annotation is the annotation of its own Node where the agent says what
// it applied; the only field of the Node it may change (the chart's
// ValidatingAdmissionPolicy).
const Annotation = "nodetrust.regcred.io/applied"

// maxEntries bounds each map of the annotation, so that a config with
// many hosts keeps it small.
const maxEntries = 32

// maxMessage bounds each message in it.
const maxMessage = 200

// Status is what the agent applied on its node, as its Node's annotation
// holds it (JSON).
type Status struct {
	// Hosts whose files are in place, and their mode.
	Hosts map[string]nodetrust.Mode `json:"hosts,omitempty"`
	// Conflicts are hosts left alone, and why: files there are not
	// regcred's.
	Conflicts map[string]string `json:"conflicts,omitempty"`
	// Notes are hosts applied with a side effect to know of: their
	// directory hides the admin's _default/ from containerd.
	Notes map[string]string `json:"notes,omitempty"`
	// Errors are hosts whose files could not be written or removed, or
	// whose published entry is invalid ("" for the document or the
	// directory as a whole).
	Errors map[string]string `json:"errors,omitempty"`
	// Published is the resourceVersion of the ConfigMap applied; empty
	// while nothing is published.
	Published string `json:"published,omitempty"`
	// More counts the entries left out to keep the annotation small.
	More int `json:"more,omitempty"`
}

// statusOf sums up a reconcile and the errors of reading what was
// published.
func statusOf(published string, res containerd.Result, readErrs map[string]string) Status {
	s := Status{Published: published, Hosts: map[string]nodetrust.Mode{}, Conflicts: map[string]string{}, Notes: map[string]string{}, Errors: map[string]string{}}
	maps.Copy(s.Hosts, res.Applied)
	for _, c := range res.Conflicts {
		s.Conflicts[c.Host] = c.Reason
	}
	for _, n := range res.Notes {
		s.Notes[n.Host] = n.Reason
	}
	for _, e := range res.Errors {
		s.Errors[e.Host] = e.Err.Error()
	}
	maps.Copy(s.Errors, readErrs)
	s.More += keepFirst(s.Hosts) + capMessages(s.Conflicts) + capMessages(s.Notes) + capMessages(s.Errors)
	return s
}

// untouched is the status of a node whose files were left as they are
// (nothing published, or not a document): the hosts in force, as their
// files say.
func untouched(published string, inForce map[string]nodetrust.Mode, readErrs map[string]string) Status {
	s := Status{Published: published, Hosts: inForce, Errors: readErrs}
	s.More += keepFirst(s.Hosts) + capMessages(s.Errors)
	return s
}

// keepFirst keeps the first maxEntries entries of m (by key) and returns how
// many it dropped.
func keepFirst[V any](m map[string]V) int {
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) <= maxEntries {
		return 0
	}
	for _, k := range keys[maxEntries:] {
		delete(m, k)
	}
	return len(keys) - maxEntries
}

func capMessages(m map[string]string) int {
	for k, v := range m {
		if len(v) > maxMessage {
			m[k] = v[:maxMessage] + "..."
		}
	}
	return keepFirst(m)
}

// annotation is the status as the Node's annotation holds it.
func (s Status) annotation() string {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Sprintf(`{"errors":{"":%q}}`, err.Error())
	}
	return string(b)
}

// patch is the merge patch that sets the annotation, and nothing else.
func (s Status) patch() ([]byte, error) {
	return json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{Annotation: s.annotation()}}})
}
