package admission

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/plan"
)

// PlanInput reads a Pod as the webhook does: init containers, containers,
// then ephemeral containers, without empty images; field names are
// case-sensitive.
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
