package chart

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// values are chart values, written to a file for helm's --values.
type values map[string]any

// valuesFile writes v to a temporary file and returns its path.
func valuesFile(t *testing.T, v values) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// render runs helm template for release regcred in namespace regcred with v.
func render(t *testing.T, v values) (*rendered, error) {
	t.Helper()
	return renderRelease(t, "regcred", v)
}

// renderRelease runs helm template for release in namespace regcred with
// v, and more of helm's flags.
func renderRelease(t *testing.T, release string, v values, flags ...string) (*rendered, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir, "--kube-version", "1.30.0", "--namespace", "regcred", "--values", valuesFile(t, v)}, flags...)
	out, err := helm(t, args...)
	if err != nil {
		return nil, err
	}
	objs, err := parseObjects([]byte(out))
	if err != nil {
		return nil, err
	}
	return &rendered{objects: objs}, nil
}

// mustRender is render for values that must render.
func mustRender(t *testing.T, v values) *rendered {
	t.Helper()
	r, err := render(t, v)
	require.NoError(t, err)
	return r
}

// parseObjects decodes a multi-document YAML stream.
func parseObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, &u)
		}
	}
}

// rendered is the output of helm template.
type rendered struct {
	objects []*unstructured.Unstructured
}

// find returns the object of that kind and name, or nil.
func (r *rendered) find(kind, name string) *unstructured.Unstructured {
	for _, o := range r.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// kinds counts the objects per kind.
func (r *rendered) kinds() map[string]int {
	n := map[string]int{}
	for _, o := range r.objects {
		n[o.GetKind()]++
	}
	return n
}

// get decodes the object of that kind and name into out (a typed object).
func (r *rendered) get(t *testing.T, kind, name string, out any) {
	t.Helper()
	o := r.find(kind, name)
	require.NotNil(t, o, "%s %s not rendered", kind, name)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true))
}
