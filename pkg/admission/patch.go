package admission

import (
	"fmt"
	"strings"

	"github.com/regcred/regcred/pkg/jsonscan"
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
// notInjected (AnnotationNotInjected) if not empty; nil when there is
// nothing to change. It is built from what changes, never by diffing the
// whole Pod, and written as encoding/json would write its operations.
func buildPatch(p *podView, add []injection, notInjected string) []byte {
	if len(add) == 0 && notInjected == "" {
		return nil
	}
	b := make([]byte, 0, 256)
	b = append(b, '[')
	op := func(path string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"op":"add","path":`...)
		b = jsonscan.AppendString(b, path)
		b = append(b, `,"value":`...)
	}
	secretRef := func(name string) {
		b = append(b, `{"name":`...)
		b = jsonscan.AppendString(b, name)
		b = append(b, '}')
	}
	if len(add) > 0 && len(p.Spec.ImagePullSecrets) == 0 {
		op("/spec/imagePullSecrets")
		b = append(b, '[')
		for i, a := range add {
			if i > 0 {
				b = append(b, ',')
			}
			secretRef(a.secret)
		}
		b = append(b, "]}"...)
	} else {
		for _, a := range add {
			op("/spec/imagePullSecrets/-")
			secretRef(a.secret)
			b = append(b, '}')
		}
	}
	annotations := p.meta().Annotations
	injected := ""
	if len(add) > 0 {
		var v strings.Builder
		if prev := annotations[AnnotationInjected]; prev != "" {
			// A reinvocation adds to what an earlier pass injected.
			v.WriteString(prev)
			v.WriteByte(',')
		}
		for i, a := range add {
			if i > 0 {
				v.WriteByte(',')
			}
			v.WriteString(a.secret + "=" + a.registry)
		}
		injected = v.String()
	}
	if notInjected != "" && annotations[AnnotationNotInjected] == notInjected {
		notInjected = ""
	}
	// The annotations to set, in the order encoding/json writes a map's
	// keys.
	set := [2][2]string{{AnnotationInjected, injected}, {AnnotationNotInjected, notInjected}}
	object := func() {
		b = append(b, '{')
		n := 0
		for _, kv := range set {
			if kv[1] == "" {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = jsonscan.AppendString(b, kv[0])
			b = append(b, ':')
			b = jsonscan.AppendString(b, kv[1])
			n++
		}
		b = append(b, '}')
	}
	switch {
	case injected == "" && notInjected == "":
	case p.Metadata == nil:
		op("/metadata")
		b = append(b, `{"annotations":`...)
		object()
		b = append(b, "}}"...)
	case annotations == nil:
		op("/metadata/annotations")
		object()
		b = append(b, '}')
	default:
		for _, kv := range set {
			if kv[1] != "" {
				op("/metadata/annotations/" + escapePointer(kv[0]))
				b = jsonscan.AppendString(b, kv[1])
				b = append(b, '}')
			}
		}
	}
	if len(b) == 1 {
		return nil
	}
	return append(b, ']')
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
