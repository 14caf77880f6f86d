package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Parse decodes a config from YAML or JSON, refusing unknown fields, and
// applies defaults. It does not validate: call Validate.
func Parse(data []byte) (*Config, error) {
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var top struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Registries []json.RawMessage `json:"registries"`
	}
	if err := decodeStrict(raw, &top); err != nil {
		return nil, err
	}
	cfg := &Config{APIVersion: top.APIVersion, Kind: top.Kind}
	var errs []error
	for i, r := range top.Registries {
		var reg Registry
		if err := decodeStrict(r, &reg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", registryLabel(i, peekName(r)), err))
			continue
		}
		cfg.Registries = append(cfg.Registries, reg)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Default()
	return cfg, nil
}

// Default fills in the defaults of every optional field.
func (c *Config) Default() {
	for i := range c.Registries {
		r := &c.Registries[i]
		if r.Connection == "" {
			r.Connection = Secure
		}
		if r.Clusters.Mode == "" {
			r.Clusters.Mode = InjectEverywhereExcept
		}
		if r.PullSecret.Mode == "" {
			r.PullSecret.Mode = RegistryCredentials
		}
		if (r.Type == TypeGCR || r.Type == TypeArtifactRegistry) && r.Username == nil {
			u := JSONKeyUser
			r.Username = &ValueSource{Value: &u}
		}
	}
}

func decodeStrict(data []byte, v any) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return errors.New("must be an object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	return nil
}

// describeJSONError turns encoding/json's errors into field-named messages
// that never quote a value (a value may be a credential).
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("%s: must be %s, not %s", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", f)
	}
	return errors.New(strings.TrimPrefix(msg, "json: "))
}

func jsonTypeName(kind string) string {
	switch kind {
	case "slice":
		return "a list"
	case "struct", "ptr", "map":
		return "an object"
	case "bool":
		return "true or false"
	default:
		return "a " + kind
	}
}

// peekName returns the name of a registry that failed to decode, if any.
func peekName(raw json.RawMessage) string {
	var n struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &n)
	return n.Name
}

func registryLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("registries[%d]", i)
	}
	return fmt.Sprintf("registry %q", name)
}
