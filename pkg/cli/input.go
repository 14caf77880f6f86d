package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/config"
)

// The kinds of file a config is read from.
const (
	inputBare      = "RegistryConfig"
	inputConfigMap = "ConfigMap"
	inputSecret    = "Secret"
	inputValues    = "values"
)

// input is a registry config as found in a file.
type input struct {
	// data is the RegistryConfig's YAML or JSON.
	data []byte
	// kind is the kind of file: a bare RegistryConfig, a ConfigMap or
	// Secret manifest, or the Helm chart's values.
	kind string
	// storedIn is where the file says the config is stored; empty for a
	// bare config.
	storedIn config.StoredIn
	// describe tells where in the file the config is; empty for a bare one.
	describe string
}

// readInput finds the registry config in a file: the file itself (a
// RegistryConfig, or anything that is not one of the others, for the
// parser to report), the value under key of a ConfigMap or Secret manifest
// (a Secret's data is base64, its stringData plain and winning, as the API
// server merges them), or config.registries of the chart's values.
func readInput(raw []byte, key string) (*input, error) {
	if key == "" {
		key = "config.yaml"
	}
	bare := &input{data: raw, kind: inputBare}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return bare, nil // the parser says what is wrong
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil {
		return bare, nil
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	_ = json.Unmarshal(js, &head)
	// A manifest or values file of two documents (two files joined, helm
	// template's output) would be read as its first: kubectl apply would
	// apply the others too. A bare config's parser says the same.
	if p := config.LaterDocument(raw); p != nil && (head.Kind == "ConfigMap" || head.Kind == "Secret" || head.Kind == "" && top["config"] != nil) {
		return nil, errors.New(p.Message)
	}
	switch {
	case head.APIVersion == "v1" && head.Kind == "ConfigMap":
		var cm corev1.ConfigMap
		if err := json.Unmarshal(js, &cm); err != nil {
			return nil, fmt.Errorf("not a valid ConfigMap: %s", describeManifestError(err))
		}
		in := &input{kind: inputConfigMap, storedIn: config.InConfigMap, describe: fmt.Sprintf("ConfigMap %q, key %s", cm.Name, key)}
		if v, ok := cm.Data[key]; ok {
			in.data = []byte(v)
		} else if v, ok := cm.BinaryData[key]; ok {
			in.data = v
		} else {
			return nil, missingKey("ConfigMap", cm.Name, key, keys(cm.Data, cm.BinaryData))
		}
		return in, nil
	case head.APIVersion == "v1" && head.Kind == "Secret":
		var s corev1.Secret
		if err := json.Unmarshal(js, &s); err != nil {
			return nil, fmt.Errorf("not a valid Secret (data must be base64; stringData is plain): %s", describeManifestError(err))
		}
		in := &input{kind: inputSecret, storedIn: config.InSecret, describe: fmt.Sprintf("Secret %q, key %s", s.Name, key)}
		if v, ok := s.StringData[key]; ok {
			in.data = []byte(v)
		} else if v, ok := s.Data[key]; ok {
			in.data = v
		} else {
			return nil, missingKey("Secret", s.Name, key, keys(s.StringData, s.Data))
		}
		return in, nil
	case head.Kind == "" && top["config"] != nil:
		return readValues(top["config"])
	}
	return bare, nil
}

// readValues wraps the chart's config.registries into the RegistryConfig
// the chart renders from them.
func readValues(raw json.RawMessage) (*input, error) {
	var v struct {
		Registries        json.RawMessage `json:"registries"`
		ExistingConfigMap string          `json:"existingConfigMap"`
		ExistingSecret    string          `json:"existingSecret"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, errors.New("config: must be an object (the chart's values: config.registries)")
	}
	switch {
	case v.ExistingConfigMap != "":
		return nil, fmt.Errorf("the values use config.existingConfigMap %q: the config is in that ConfigMap, not in this file, and cannot be validated offline from it; validate the ConfigMap instead (kubectl -n regcred get configmap %s -o yaml | regcred validate -f -)", v.ExistingConfigMap, v.ExistingConfigMap)
	case v.ExistingSecret != "":
		return nil, fmt.Errorf("the values use config.existingSecret %q: the config is in that Secret, not in this file, and cannot be validated offline from it; validate the Secret instead (kubectl -n regcred get secret %s -o yaml | regcred validate -f -)", v.ExistingSecret, v.ExistingSecret)
	}
	regs := v.Registries
	if len(regs) == 0 || string(regs) == "null" {
		regs = json.RawMessage("[]")
	}
	data, err := json.Marshal(map[string]any{"apiVersion": config.APIVersion, "kind": config.Kind, "registries": regs})
	if err != nil {
		return nil, err
	}
	return &input{data: data, kind: inputValues, storedIn: config.InConfigMap, describe: "the chart's values, config.registries"}, nil
}

func missingKey(kind, name, key string, have []string) error {
	msg := fmt.Sprintf("%s %q has no key %s", kind, name, key)
	if len(have) > 0 {
		msg += fmt.Sprintf(" (it has %s): name the key with --config-key", strings.Join(have, ", "))
	}
	return errors.New(msg)
}

func keys[A, B any](a map[string]A, b map[string]B) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, dup := a[k]; !dup {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// describeManifestError says what is wrong with a manifest without
// quoting it: a value may be a credential.
func describeManifestError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("%s: must be %s", typeErr.Field, typeErr.Type)
	}
	if strings.Contains(err.Error(), "base64") {
		return "a value of data is not base64"
	}
	return "not valid"
}
