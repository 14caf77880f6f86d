package admission

import (
	"fmt"
	"strings"

	"gomodules.xyz/jsonpatch/v2"

	"github.com/regcred/regcred/pkg/plan"
)

// AnnotationInjected lists, on each Pod regcred patched, the pull secrets it
// injected and the registry each one is for.
const AnnotationInjected = "regcred.io/injected"

// injection is one pull secret the handler adds and why.
type injection struct {
	secret   string
	registry string
}

// AnnotationNotInjected lists, on a Pod with images regcred could not
// serve although a registry matched them (or whose credentials the kubelet
// will not try first), each such image and why. It is set only when there
// is something to say, at the Pod's creation, and never changed after.
const AnnotationNotInjected = "regcred.io/not-injected"

// maxNotInjectedLen bounds the AnnotationNotInjected annotation.
const maxNotInjectedLen = 1024

// buildPatch returns the JSON patch that appends the injections to the
// Pod's imagePullSecrets and records them in an annotation, and records
// notInjected (AnnotationNotInjected) if not empty. It is built from what
// changes, never by diffing the whole Pod.
func buildPatch(p *podView, add []injection, notInjected string) []jsonpatch.JsonPatchOperation {
	if len(add) == 0 && notInjected == "" {
		return nil
	}
	ops := make([]jsonpatch.JsonPatchOperation, 0, len(add)+2)
	if len(add) > 0 && len(p.Spec.ImagePullSecrets) == 0 {
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
	annotations := p.meta().Annotations
	set := map[string]string{}
	if len(add) > 0 {
		parts := make([]string, len(add))
		for i, a := range add {
			parts[i] = a.secret + "=" + a.registry
		}
		value := strings.Join(parts, ",")
		if prev := annotations[AnnotationInjected]; prev != "" {
			// A reinvocation adds to what an earlier pass injected.
			value = prev + "," + value
		}
		set[AnnotationInjected] = value
	}
	if notInjected != "" && annotations[AnnotationNotInjected] != notInjected {
		set[AnnotationNotInjected] = notInjected
	}
	switch {
	case len(set) == 0:
	case p.Metadata == nil:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata", map[string]any{"annotations": set}))
	case annotations == nil:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations", set))
	default:
		for _, k := range []string{AnnotationInjected, AnnotationNotInjected} {
			if v, ok := set[k]; ok {
				ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations/"+escapePointer(k), v))
			}
		}
	}
	return ops
}

// notInjected formats the misses for AnnotationNotInjected: an image no
// registry serves is left out (public images are the common case; the log
// says it), the rest as "image=reason(registry)", within
// maxNotInjectedLen.
func notInjected(misses []plan.Miss) string {
	var parts []string
	for _, m := range misses {
		if m.Reason == plan.NoRegistry || m.Image == "" {
			continue
		}
		part := m.Image + "=" + string(m.Reason)
		if m.Registry != "" {
			part += "(" + m.Registry + ")"
		}
		parts = append(parts, part)
	}
	var b strings.Builder
	for i, part := range parts {
		sep := ", "
		if i == 0 {
			sep = ""
		}
		// Room for this part and, if more follow, for saying how many.
		tail := ""
		if after := len(parts) - i - 1; after > 0 {
			tail = fmt.Sprintf(", and %d more", after)
		}
		if b.Len()+len(sep)+len(part)+len(tail) > maxNotInjectedLen {
			if i == 0 {
				b.WriteString(shorten(part, maxNotInjectedLen-len(tail)) + tail)
			} else {
				// The previous part left room for this.
				fmt.Fprintf(&b, ", and %d more", len(parts)-i)
			}
			break
		}
		b.WriteString(sep + part)
	}
	return b.String()
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
