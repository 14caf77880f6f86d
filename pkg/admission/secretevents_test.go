package admission

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSecretEvents(t *testing.T) {
	ours := `{"metadata":{"name":"regcred-hub","labels":{"app.kubernetes.io/managed-by":"regcred","regcred.io/registry":"hub"}},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"e30="}}`
	theirs := `{"metadata":{"name":"db","labels":{"app":"db"}},"data":{"password":"c2VjcmV0"}}`
	review := func(op, user, old string, dryRun bool) testReview {
		return testReview{kind: "Secret", operation: op, namespace: "app", name: "regcred-hub", username: user, oldObject: old, dryRun: dryRun}
	}
	for _, tc := range []struct {
		name    string
		req     testReview
		restore []string
	}{
		{"deleted by hand", review("DELETE", "alice", ours, false), []string{"app/regcred-hub"}},
		{"edited by hand", review("UPDATE", "alice", ours, false), []string{"app/regcred-hub"}},
		{"regcred's own write", review("UPDATE", "system:serviceaccount:regcred:regcred", ours, false), nil},
		{"dry run", review("DELETE", "alice", ours, true), nil},
		{"someone else's secret", review("DELETE", "alice", theirs, false), nil},
		{"create", review("CREATE", "alice", ours, false), nil},
		{"an old object that is no object", review("DELETE", "alice", "[1,2]", false), nil},
		{"labels of the wrong type", review("DELETE", "alice", `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"regcred","regcred.io/registry":1}}}`, false), nil},
		{"no old object", review("DELETE", "alice", "", false), nil},
		{"a null old object", review("DELETE", "alice", "null", false), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			s := &SecretEvents{Self: "system:serviceaccount:regcred:regcred", Restore: func(ns, reg string) { got = append(got, ns+"/"+reg) }}
			a := admit(t, s, tc.req)
			assert.True(t, a.allowed, "it never denies")
			assert.Equal(t, "uid-1", a.uid)
			assert.Empty(t, a.patch)
			assert.Equal(t, tc.restore, got)
		})
	}
}

// A malformed review is answered, never a panic.
func TestSecretEventsMalformed(t *testing.T) {
	s := &SecretEvents{Restore: func(string, string) { t.Fatal("nothing to restore") }}
	a := post(t, s, "application/json", []byte(`{"request":{"oldObject":{`))
	assert.False(t, a.allowed)
	assert.Equal(t, int32(http.StatusBadRequest), a.code)
}
