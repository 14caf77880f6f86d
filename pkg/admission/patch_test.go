package admission

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/plan"
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
	var ops []struct {
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	require.NoError(t, json.Unmarshal(buildPatch(p, []injection{{secret: "regcred-hub", registry: "hub"}, {secret: "admin-pull", registry: "harbor"}}, ""), &ops))
	require.Equal(t, "/metadata", ops[len(ops)-1].Path)
	var meta struct {
		Annotations map[string]string `json:"annotations"`
	}
	require.NoError(t, json.Unmarshal(ops[len(ops)-1].Value, &meta))
	value := meta.Annotations[AnnotationInjected]
	assert.Equal(t, []InjectedSecret{{"regcred-hub", "hub"}, {"admin-pull", "harbor"}}, ParseInjected(value))
}

func TestNotInjected(t *testing.T) {
	miss := func(img string, r plan.Reason, reg string) plan.Miss {
		return plan.Miss{Image: img, Reason: r, Registry: reg}
	}
	assert.Empty(t, notInjected(nil))
	assert.Empty(t, notInjected([]plan.Miss{miss("nginx", plan.NoRegistry, ""), {Reason: plan.PodOptedOut}}), "public images and skipped Pods: nothing to say")
	assert.Equal(t, "a.example.com/x=cluster-policy(a), Quay.io/y=host-case",
		notInjected([]plan.Miss{miss("a.example.com/x", plan.ClusterPolicy, "a"), miss("nginx", plan.NoRegistry, ""), miss("Quay.io/y", plan.HostCase, "")}))

	var many []plan.Miss
	for i := range 200 {
		many = append(many, miss(fmt.Sprintf("reg.example.com/team/app-%03d:v1", i), plan.NamespaceNotSelected, "team"))
	}
	got := notInjected(many)
	assert.LessOrEqual(t, len(got), maxNotInjectedLen)
	shown := strings.Count(got, "=namespace-not-selected(team)")
	assert.True(t, strings.HasSuffix(got, fmt.Sprintf(", and %d more", 200-shown)), got)
	assert.Greater(t, shown, 10)

	long := []plan.Miss{miss("reg.example.com/"+strings.Repeat("a", 2000), plan.ClusterPolicy, "r"), miss("b.example.com/x", plan.ClusterPolicy, "r")}
	got = notInjected(long)
	assert.LessOrEqual(t, len(got), maxNotInjectedLen)
	assert.True(t, strings.HasSuffix(got, "..., and 1 more"), got)
}

func TestPatchAnnotationsOnly(t *testing.T) {
	p := &podView{}
	require.NoError(t, json.Unmarshal([]byte(`{"metadata":{"annotations":{"a":"b"}}}`), p))
	assert.JSONEq(t, `[{"op":"add","path":"/metadata/annotations/regcred.io~1not-injected","value":"x.example.com/y=cluster-policy(x)"}]`,
		string(buildPatch(p, nil, "x.example.com/y=cluster-policy(x)")))
	assert.Nil(t, buildPatch(p, nil, ""))
	p.Metadata.Annotations[AnnotationNotInjected] = "said already"
	assert.Nil(t, buildPatch(p, nil, "said already"), "a reinvocation says nothing twice")
}
