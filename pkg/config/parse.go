package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Parse decodes a config from YAML or JSON. It reports every unknown field
// at once, each with its path, a key set twice in one mapping (see
// duplicateKeys), and a value of the wrong type; it does not
// validate (see Validate); it applies the defaults (see Default). Problems
// never quote a value, nor text that may be one: a value may be a
// credential. A YAML error gives its line and the parser's reason only
// when that reason is fixed text (see describeYAMLError); an unknown
// field inside a value source is reported without its name (see
// hiddenKeys).
//
// A config with unknown fields or keys set twice is still returned, so
// that its other problems can be listed too; one with a value of the
// wrong type is not.
func Parse(data []byte) (*Config, error) {
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, Problems{{Message: "not valid YAML: " + describeYAMLError(data, err)}}
	}
	if p := LaterDocument(data); p != nil {
		return nil, Problems{*p}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, Problems{{Message: "must be a RegistryConfig object (apiVersion, kind, registries)"}}
	}
	var ps Problems
	dups := map[int][]duplicateKey{}
	for _, d := range duplicateKeys(data) {
		if d.registry < 0 {
			ps = append(ps, Problem{Field: d.field, Message: d.message()})
		} else {
			dups[d.registry] = append(dups[d.registry], d)
		}
	}
	cfg := &Config{}
	// The registries' own fields are checked one registry at a time below.
	others := maps.Clone(top)
	delete(others, "registries")
	if rest, err := json.Marshal(others); err == nil {
		for _, f := range unknownFields(rest, reflect.TypeFor[Config](), "") {
			ps = append(ps, Problem{Field: f.path, Message: f.message()})
		}
	}
	decodeField(top, "apiVersion", &cfg.APIVersion, &ps)
	decodeField(top, "kind", &cfg.Kind, &ps)
	var items []json.RawMessage
	decodeField(top, "registries", &items, &ps)

	decoded := true
	names := map[string]int{}
	for _, item := range items {
		names[peekName(item)]++
	}
	for i, item := range items {
		name := peekName(item)
		rep := NewReporter(&ps, i, name)
		rep.ambiguous = name != "" && names[name] > 1
		for _, d := range dups[i] {
			rep.Fail(d.field, d.message())
		}
		if bytes.Equal(bytes.TrimSpace(item), []byte("null")) || !bytes.HasPrefix(bytes.TrimSpace(item), []byte("{")) {
			rep.Fail("", "must be an object")
			decoded = false
			continue
		}
		for _, f := range unknownFields(item, reflect.TypeFor[Registry](), "") {
			rep.Fail(f.path, f.message())
		}
		var reg Registry
		if err := json.Unmarshal(item, &reg); err != nil {
			field, msg := describeJSONError(err)
			rep.Fail(field, msg)
			decoded = false
			continue
		}
		cfg.Registries = append(cfg.Registries, reg)
	}
	if !decoded {
		return nil, ps
	}
	cfg.Default()
	return cfg, ps.Err()
}

// decodeField decodes top[name] into v, if present.
func decodeField(top map[string]json.RawMessage, name string, v any, ps *Problems) {
	raw, ok := top[name]
	if !ok {
		return
	}
	if err := json.Unmarshal(raw, v); err != nil {
		_, msg := describeJSONError(err)
		*ps = append(*ps, Problem{Field: name, Message: msg})
	}
}

// describeJSONError turns encoding/json's errors into a field and a
// message that never quotes a value.
func describeJSONError(err error) (field, msg string) {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return typeErr.Field, fmt.Sprintf("must be %s, not %s", jsonTypeName(typeErr.Type.Kind()), typeErr.Value)
	}
	return "", "not valid JSON or YAML"
}

func jsonTypeName(kind reflect.Kind) string {
	switch kind {
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Pointer, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "true or false"
	default:
		return "a " + kind.String()
	}
}

// hiddenKeys are the types whose unknown keys are never named, with what
// to write instead. A value source is where a credential goes, and YAML
// turns one into a key when `value:` is forgotten (`password: {s3cret}`)
// or an unquoted value holds a comma (`{value: abc,def}`).
var hiddenKeys = map[reflect.Type]string{
	reflect.TypeFor[ValueSource](): "write {value: ...} or {secretKeyRef: {name, key}}",
}

// unknownField is a field of the config its types do not have.
type unknownField struct {
	// path is the field's path or, for a hidden key, the path of the
	// object that holds it.
	path string
	// hidden is set for a key that is not named: a key of a type in
	// hiddenKeys, or a key without a value, which is what YAML makes of
	// the text after a comma in an unquoted value in braces
	// (`password: abc,def` in a {...} registry).
	hidden bool
	// hint, for a hidden key, says what to write instead.
	hint string
}

func (f unknownField) message() string {
	switch {
	case !f.hidden:
		return "unknown field"
	case f.hint != "":
		return "unknown field, not shown as it may be a credential: " + f.hint
	}
	return "unknown field without a value, not shown as it may be a credential cut at a comma: quote a value that holds one"
}

// unknownFields returns the fields of raw (JSON) that t does not have,
// sorted by path, walking into objects and lists. Fields are matched by
// their JSON names, case-sensitively, as the API server does. Hidden keys
// (see unknownField) are not named: those of one object are one field,
// at the object's path.
func unknownFields(raw json.RawMessage, t reflect.Type, path string) []unknownField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []unknownField
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil // not an object: the decoder reports the type
		}
		fields := jsonFields(t)
		hint, hideAll := hiddenKeys[t]
		var hidden []unknownField
		for name, v := range obj {
			ft, ok := fields[name]
			switch {
			case ok:
				out = append(out, unknownFields(v, ft, joinPath(path, name))...)
			case hideAll:
				hidden = []unknownField{{path: path, hidden: true, hint: hint}}
			case bytes.Equal(bytes.TrimSpace(v), []byte("null")):
				hidden = []unknownField{{path: path, hidden: true}}
			default:
				out = append(out, unknownField{path: joinPath(path, name)})
			}
		}
		out = append(out, hidden...)
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for i, v := range items {
			out = append(out, unknownFields(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		for k, v := range obj {
			out = append(out, unknownFields(v, t.Elem(), joinPath(path, k))...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// jsonFields maps the JSON names of t's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// peekName returns a registry's name, if it has one.
func peekName(raw json.RawMessage) string {
	var n struct {
		Name any `json:"name"`
	}
	_ = json.Unmarshal(raw, &n)
	s, _ := n.Name.(string)
	return s
}
