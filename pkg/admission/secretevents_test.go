package admission

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func TestSecretEvents(t *testing.T) {
	ours := `{"metadata":{"name":"regcred-hub","labels":{"app.kubernetes.io/managed-by":"regcred","regcred.io/registry":"hub"}},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"e30="}}`
	theirs := `{"metadata":{"name":"db","labels":{"app":"db"}},"data":{"password":"c2VjcmV0"}}`
	review := func(op admissionv1.Operation, user, old string, dryRun bool) admission.Request {
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}, Operation: op,
			Namespace: "app", Name: "regcred-hub", UserInfo: authenticationv1.UserInfo{Username: user},
			OldObject: runtime.RawExtension{Raw: []byte(old)}, DryRun: ptr.To(dryRun),
		}}
	}
	for _, tc := range []struct {
		name    string
		req     admission.Request
		restore []string
	}{
		{"deleted by hand", review(admissionv1.Delete, "alice", ours, false), []string{"app/regcred-hub"}},
		{"edited by hand", review(admissionv1.Update, "alice", ours, false), []string{"app/regcred-hub"}},
		{"regcred's own write", review(admissionv1.Update, "system:serviceaccount:regcred:regcred", ours, false), nil},
		{"dry run", review(admissionv1.Delete, "alice", ours, true), nil},
		{"someone else's secret", review(admissionv1.Delete, "alice", theirs, false), nil},
		{"create", review(admissionv1.Create, "alice", ours, false), nil},
		{"not JSON", review(admissionv1.Delete, "alice", "{", false), nil},
		{"no old object", review(admissionv1.Delete, "alice", "", false), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			s := &SecretEvents{Self: "system:serviceaccount:regcred:regcred", Restore: func(ns, reg string) { got = append(got, ns+"/"+reg) }}
			resp := s.Handle(t.Context(), tc.req)
			assert.True(t, resp.Allowed, "it never denies")
			assert.Empty(t, resp.Patches)
			assert.Equal(t, tc.restore, got)
		})
	}
}

// Through the HTTP layer, a malformed review is answered, never a panic.
func TestSecretEventsHTTP(t *testing.T) {
	s := &SecretEvents{Restore: func(string, string) { t.Fatal("nothing to restore") }}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: "2", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}, Operation: admissionv1.Delete, OldObject: runtime.RawExtension{Raw: []byte(`[1,2]`)}},
	})
	require.NoError(t, err)
	_, resp := serve(t, s, "application/json", body)
	require.NotNil(t, resp.Response)
	assert.True(t, resp.Response.Allowed)
}
