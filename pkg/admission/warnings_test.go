package admission

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCapWarnings(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("w%d", i)
		}
		return out
	}
	long := strings.Repeat("é", 400) // 800 bytes
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, []string{}},
		{"few, kept in order", []string{"b", "a"}, []string{"b", "a"}},
		{"duplicates dropped", []string{"a", "b", "a", "a"}, []string{"a", "b"}},
		{"exactly the most", many(10), many(10)},
		{"one too many", many(11), append(many(9), "regcred: and 2 more warnings")},
		{"one more", append(many(9), "x", "x", "y"), append(many(9), "regcred: and 2 more warnings")},
		{"a long one shortened", []string{long}, []string{long[:maxWarningLen-4] + "..."}},
		{"shortened alike, then one", []string{long + "1", long + "2", long + "3"}, []string{long[:508] + "..."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, capWarnings(tc.in))
		})
	}

	// Long distinct warnings: as many as fit in the total.
	var distinct []string
	for i := range 20 {
		distinct = append(distinct, fmt.Sprintf("%02d %s", i, strings.Repeat("x", 600)))
	}
	got := capWarnings(distinct)
	assert.LessOrEqual(t, len(got), maxWarnings)
	assert.LessOrEqual(t, totalLen(got), maxWarningBytes)
	assert.Equal(t, fmt.Sprintf("regcred: and %d more warnings", 20-(len(got)-1)), got[len(got)-1])
	for _, w := range got {
		assert.LessOrEqual(t, len(w), maxWarningLen)
		assert.True(t, utf8.ValidString(w))
	}
}

// A Pod with a thousand bad image references is admitted, patched for its
// good one, with a few short warnings: at most 10, at most 4 KiB.
func TestHandleCapsWarnings(t *testing.T) {
	f := newFixture(t)
	containers := []map[string]string{{"name": "good", "image": "quay.io/org/app"}}
	for i := range 1000 {
		containers = append(containers, map[string]string{"name": fmt.Sprintf("c%d", i), "image": fmt.Sprintf("Registry.example.com/UPPER/Case-%d:%s", i, strings.Repeat("t", 100))})
	}
	pod, err := json.Marshal(map[string]any{"spec": map[string]any{"containers": containers}})
	require.NoError(t, err)

	a := admit(t, f.h, podReview("app", string(pod)))
	require.True(t, a.allowed)
	assert.Contains(t, a.patch, "regcred-quay", "the good image still gets its secret")
	require.Len(t, a.warnings, maxWarnings)
	assert.LessOrEqual(t, totalLen(a.warnings), maxWarningBytes)
	for _, w := range a.warnings {
		assert.LessOrEqual(t, len(w), maxWarningLen)
		assert.True(t, strings.HasPrefix(w, "regcred: "))
	}
	assert.Contains(t, a.warnings[0], `image "Registry.example.com/UPPER/Case-0:`)
	assert.Equal(t, "regcred: and 991 more warnings", a.warnings[maxWarnings-1])
	// So is the annotation that lists them.
	var ops []struct {
		Path  string
		Value json.RawMessage
	}
	require.NoError(t, json.Unmarshal([]byte(a.patch), &ops))
	var meta struct {
		Annotations map[string]string `json:"annotations"`
	}
	require.Equal(t, "/metadata", ops[len(ops)-1].Path)
	require.NoError(t, json.Unmarshal(ops[len(ops)-1].Value, &meta))
	ann := meta.Annotations[AnnotationNotInjected]
	assert.LessOrEqual(t, len(ann), maxNotInjectedLen)
	assert.True(t, strings.HasPrefix(ann, "Registry.example.com/UPPER/Case-0:"), ann)
	assert.Regexp(t, `, and [0-9]+ more$`, ann)

	// The same bad reference a thousand times is one warning.
	containers = containers[:1]
	for i := range 1000 {
		containers = append(containers, map[string]string{"name": fmt.Sprintf("c%d", i), "image": "UPPER/Case"})
	}
	pod, err = json.Marshal(map[string]any{"spec": map[string]any{"containers": containers}})
	require.NoError(t, err)
	a = admit(t, f.h, podReview("app", string(pod)))
	assert.Equal(t, []string{`regcred: image "UPPER/Case" is not a valid reference, so it matches no registry`}, a.warnings)
}
