package admission

import (
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// AnnotationInjected lists, on each Pod regcred patched, the pull secrets it
// injected and the registry each one is for.
const AnnotationInjected = "regcred.io/injected"

// injection is one pull secret the handler adds and why.
type injection struct {
	secret   string
	registry string
}

// buildPatch returns the JSON patch that appends the injections to the
// Pod's imagePullSecrets and records them in an annotation. It is built
// from what changes, never by diffing the whole Pod.
func buildPatch(p *podView, add []injection) []jsonpatch.JsonPatchOperation {
	if len(add) == 0 {
		return nil
	}
	ops := make([]jsonpatch.JsonPatchOperation, 0, len(add)+1)
	if len(p.Spec.ImagePullSecrets) == 0 {
		refs := make([]map[string]string, len(add))
		for i, a := range add {
			refs[i] = map[string]string{"name": a.secret}
		}
		ops = append(ops, jsonpatch.NewOperation("add", "/spec/imagePullSecrets", refs))
	} else {
		for _, a := range add {
			ops = append(ops, jsonpatch.NewOperation("add", "/spec/imagePullSecrets/-", map[string]string{"name": a.secret}))
		}
	}
	parts := make([]string, len(add))
	for i, a := range add {
		parts[i] = a.secret + "=" + a.registry
	}
	value := strings.Join(parts, ",")
	annotations := p.meta().Annotations
	if prev := annotations[AnnotationInjected]; prev != "" {
		// A reinvocation adds to what an earlier pass injected.
		value = prev + "," + value
	}
	switch {
	case p.Metadata == nil:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata", map[string]any{"annotations": map[string]string{AnnotationInjected: value}}))
	case annotations == nil:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{AnnotationInjected: value}))
	default:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations/"+escapePointer(AnnotationInjected), value))
	}
	return ops
}

// escapePointer escapes a JSON pointer segment (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// InjectedSecret is one entry of the annotation AnnotationInjected: a pull
// secret regcred injected, and the registry it is for.
type InjectedSecret struct {
	Secret   string `json:"secret"`
	Registry string `json:"registry"`
}

// ParseInjected reads the annotation AnnotationInjected, in order.
func ParseInjected(value string) []InjectedSecret {
	var out []InjectedSecret
	for _, part := range strings.Split(value, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		secret, registry, _ := strings.Cut(part, "=")
		out = append(out, InjectedSecret{Secret: secret, Registry: registry})
	}
	return out
}
