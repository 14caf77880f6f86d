package admission

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// ParseInjected reads back what buildPatch writes.
func TestParseInjected(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []InjectedSecret
	}{
		{"", nil},
		{"regcred-hub=hub", []InjectedSecret{{"regcred-hub", "hub"}}},
		{"regcred-hub=hub,shared=a, regcred-quay=quay", []InjectedSecret{{"regcred-hub", "hub"}, {"shared", "a"}, {"regcred-quay", "quay"}}},
		{"odd,", []InjectedSecret{{"odd", ""}}},
	} {
		assert.Equal(t, tc.want, ParseInjected(tc.value), tc.value)
	}

	p := &podView{}
	ops := buildPatch(p, []injection{{secret: "regcred-hub", registry: "hub"}, {secret: "admin-pull", registry: "harbor"}})
	value := ops[len(ops)-1].Value.(map[string]any)["annotations"].(map[string]string)[AnnotationInjected]
	assert.Equal(t, []InjectedSecret{{"regcred-hub", "hub"}, {"admin-pull", "harbor"}}, ParseInjected(value))
}
