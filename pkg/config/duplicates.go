package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// duplicateKey is a key set twice in one mapping. The YAML decoder
// regcred uses keeps the last one without a word, so that
// `password: {value: a, value: b}` or two `username:` fields would load
// whichever came last: a config that says two things is refused.
type duplicateKey struct {
	// registry is the registry's position, -1 for a key of the config
	// itself.
	registry int
	// field is the key's path within the registry (or the config), or,
	// for a hidden key, the path of the object that holds it.
	field string
	// line is where the key is set again.
	line int
	// hidden is set when the key is not named: it is not a field the
	// config knows, and may be a credential (`password: {s3cret, s3cret}`).
	hidden bool
}

func (d duplicateKey) message() string {
	if d.hidden {
		return "a key is set more than once (line " + strconv.Itoa(d.line) + "), not shown as it may be a credential: set each key once"
	}
	return "set more than once (line " + strconv.Itoa(d.line) + "): YAML would keep only the last; set it once"
}

// duplicateKeys returns the keys data sets more than once, each once, in
// the order of the document. It looks only at what the decoder keeps: for
// a key set twice, the last value. A document the YAML parser refuses has
// none (Parse reports why it is not valid YAML).
func duplicateKeys(data []byte) []duplicateKey {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	var out []duplicateKey
	walkDuplicates(doc.Content[0], reflect.TypeFor[Config](), -1, "", &out)
	return out
}

// LaterDocument refuses a file of more than one YAML document: the
// decoder reads the first only, and would drop, without a word, the
// registries of the others (and so their pull secrets). A document that
// says nothing (a "---" at the end, null) is no config.
func LaterDocument(data []byte) *Problem {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for first := true; ; first = false {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if first {
			if err != nil {
				return nil // Parse reports why it is not valid YAML
			}
			continue
		}
		next := ""
		if err == nil {
			if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" {
				continue
			}
			next = " (the next starts at line " + strconv.Itoa(doc.Content[0].Line) + ")"
		}
		return &Problem{Message: "more than one YAML document" + next + ": regcred reads one, and would drop the registries of the others; put every registry in one document"}
	}
}

// walkDuplicates looks for keys set twice in n, which is of type t (nil
// when the config has no such field: its keys are never named), at path
// within the registry at index reg.
func walkDuplicates(n *yaml.Node, t reflect.Type, reg int, path string, out *[]duplicateKey) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.MappingNode:
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		// The last value of each key, as the decoder keeps it.
		last := map[string]*yaml.Node{}
		var order []string
		reported := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				continue // merged keys may be set again: that overrides them
			}
			if _, seen := last[k.Value]; !seen {
				order = append(order, k.Value)
			} else if !reported[k.Value] {
				reported[k.Value] = true
				d := duplicateKey{registry: reg, line: k.Line}
				switch {
				case fields != nil && fields[k.Value] != nil:
					d.field = joinPath(path, k.Value)
				case t != nil && t.Kind() == reflect.Map:
					d.field = joinPath(path, k.Value) // a label's key
				default:
					d.field, d.hidden = path, true
				}
				*out = append(*out, d)
			}
			last[k.Value] = v
		}
		for _, key := range order {
			v := last[key]
			switch {
			case reg < 0 && path == "" && key == "registries" && t == reflect.TypeFor[Config]():
				if v.Kind == yaml.SequenceNode {
					for i, item := range v.Content {
						walkDuplicates(item, reflect.TypeFor[Registry](), i, "", out)
					}
				}
			case fields != nil && fields[key] != nil:
				walkDuplicates(v, fields[key], reg, joinPath(path, key), out)
			case t != nil && t.Kind() == reflect.Map:
				walkDuplicates(v, t.Elem(), reg, joinPath(path, key), out)
			}
			// An unknown field is reported as such; what it holds is not
			// looked at.
		}
	case yaml.SequenceNode:
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for i, item := range n.Content {
			walkDuplicates(item, elem, reg, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
	// Aliases are looked at where their anchor is; scalars hold no key.
}
