package admission

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kjson "sigs.k8s.io/json"

	"github.com/regcred/regcred/pkg/plan"
)

// PlanInput reads a Pod as the webhook does: init containers, containers,
// ephemeral containers, then image volumes, without empty images; field
// names are case-sensitive.
func TestPlanInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want plan.Pod
	}{
		{"every kind of container", `{"metadata":{"labels":{"app":"web"}},"spec":{
			"containers":[{"name":"a","image":"a:1"},{"name":"empty"}],
			"initContainers":[{"name":"i","image":"init:1"}],
			"ephemeralContainers":[{"name":"e","image":"debug:1"}],
			"imagePullSecrets":[{"name":"mine"},{"name":"regcred-hub"}]}}`,
			plan.Pod{Images: []string{"init:1", "a:1", "debug:1"}, PullSecrets: []string{"mine", "regcred-hub"}, Labels: map[string]string{"app": "web"}}},
		{"image volumes, after every container", `{"spec":{
			"volumes":[{"name":"data","image":{"reference":"quay.io/org/data:1","pullPolicy":"IfNotPresent"}},
				{"name":"cm","configMap":{"name":"x"}},{"name":"no-ref","image":{"pullPolicy":"Always"}},
				{"name":"model","image":{"reference":"myorg/model:2"}},{"name":"null","image":null}],
			"containers":[{"image":"a:1"}],"ephemeralContainers":[{"image":"debug:1"}]}}`,
			plan.Pod{Images: []string{"a:1", "debug:1", "quay.io/org/data:1", "myorg/model:2"}, PullSecrets: []string{}}},
		{"no metadata", `{"spec":{"containers":[{"image":"a"}]}}`,
			plan.Pod{Images: []string{"a"}, PullSecrets: []string{}}},
		{"case-sensitive field names", `{"spec":{"Containers":[{"image":"a"}]}}`,
			plan.Pod{Images: []string{}, PullSecrets: []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanInput([]byte(tc.raw))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := PlanInput([]byte(`{"spec":`))
	assert.Error(t, err)
}

// decodePod reads a Pod as sigs.k8s.io/json decodes it into podView: both
// fail, or both give the same value.
func FuzzDecodePod(f *testing.F) {
	for _, s := range []string{
		`{"metadata":{"name":"p","generateName":"g-","labels":{"a":"b"},"annotations":{"c":null}},"spec":{"containers":[{"name":"a","image":"a:1","env":[{"name":"X","value":"1"}]}],"initContainers":[null,{"image":"i"}],"ephemeralContainers":[],"imagePullSecrets":[{"name":"s"}]}}`,
		`{"metadata":null,"spec":null}`, `null`, `{"spec":{"containers":[{"image":42}]}}`, `{"spec":{"containers":[{"image":"a"}],"containers":[{}]}}`,
		`{"metadata":{"labels":{"\u00e9":"\ud800"}}}`,
		`{"spec":{"volumes":[{"name":"v","image":{"reference":"quay.io/a:1","pullPolicy":"Always"}},{"name":"c","configMap":{"name":"x"}},null,{"image":null},{"image":{}}]}}`,
		`{"spec":{"volumes":[{"image":{"reference":"a"},"image":{"pullPolicy":"Never"}}],"volumes":[{}]}}`,
		`{"spec":{"volumes":[{"image":{"reference":1}}]}}`, `{"spec":{"volumes":{}}}`, `{"spec":{"volumes":[{"image":[]}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want podView
		wantErr := kjson.UnmarshalCaseSensitivePreserveInts(raw, &want)
		got, err := decodePod(raw)
		if wantErr != nil {
			if err == nil {
				t.Fatalf("%q: sigs.k8s.io/json fails (%v), decodePod does not", raw, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: decodePod fails (%v), sigs.k8s.io/json does not", raw, err)
		}
		if !reflect.DeepEqual(&want, got) {
			t.Fatalf("%q: decodePod read %+v, sigs.k8s.io/json %+v", raw, got, want)
		}
	})
}
