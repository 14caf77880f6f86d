package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// serve posts body to the handler behind controller-runtime's webhook HTTP
// layer, as the API server would.
func serve(t testing.TB, h admission.Handler, contentType string, body []byte) (*httptest.ResponseRecorder, admissionv1.AdmissionReview) {
	t.Helper()
	wh := &admission.Webhook{Handler: h}
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/mutate-v1-pod", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatalf("the answer is not an AdmissionReview (HTTP %d): %q", rec.Code, rec.Body.String())
	}
	return rec, review
}

func review(object string) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"app","operation":"CREATE","object":` + object + `}}`)
}

// A malformed AdmissionReview is answered, never dropped and never a panic.
func TestMalformedReviewsAreAnswered(t *testing.T) {
	h := newFixture(t).h
	for _, tc := range []struct {
		name, contentType, body string
		allowed                 bool
		code                    int32
	}{
		{"empty body: nothing to mutate", "application/json", "", true, http.StatusOK},
		{"not JSON", "application/json", "{", false, http.StatusBadRequest},
		{"null: nothing to mutate", "application/json", "null", true, http.StatusOK},
		{"no request: nothing to mutate", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, true, http.StatusOK},
		{"wrong content type", "text/plain", string(review(`{}`)), false, http.StatusBadRequest},
		{"a Pod that is not an object", "application/json", string(review(`"nope"`)), true, http.StatusOK},
		{"a Pod with wrong field types", "application/json", string(review(`{"spec":{"containers":[{"image":42}]}}`)), true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, rv := serve(t, h, tc.contentType, []byte(tc.body))
			assert.Equal(t, http.StatusOK, rec.Code)
			require.NotNil(t, rv.Response)
			assert.Equal(t, tc.allowed, rv.Response.Allowed)
			assert.Empty(t, rv.Response.Patch)
			if !tc.allowed {
				require.NotNil(t, rv.Response.Result)
				assert.Equal(t, tc.code, rv.Response.Result.Code)
			}
		})
	}
}

func TestReviewRoundTrip(t *testing.T) {
	h := newFixture(t).h
	_, rv := serve(t, h, "application/json", review(`{"metadata":{"generateName":"web-"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`))
	require.NotNil(t, rv.Response)
	assert.True(t, rv.Response.Allowed)
	assert.Equal(t, "u1", string(rv.Response.UID))
	require.NotNil(t, rv.Response.PatchType)
	assert.Equal(t, admissionv1.PatchTypeJSONPatch, *rv.Response.PatchType)
	assert.JSONEq(t, `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-quay"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-quay=quay"}}]`, string(rv.Response.Patch))
}

func FuzzServeHTTP(f *testing.F) {
	f.Add(review(`{"spec":{"containers":[{"image":"quay.io/org/app"}]}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`))
	f.Add([]byte(`{"request":{"object":null,"kind":{"kind":"Pod"},"operation":"CREATE"}}`))
	h := newFixture(f).h
	f.Fuzz(func(t *testing.T, body []byte) {
		serve(t, h, "application/json", body)
	})
}

// BenchmarkServeHTTP is a whole review through the webhook's HTTP layer:
// decoding the AdmissionReview, the handler, encoding the answer. The
// baseline answers the same review without looking at the Pod.
func BenchmarkServeHTTP(b *testing.B) {
	body := review(string(largePod(10)))
	f := newFixture(b)
	f.h.Secrets = steadyStore{}
	for _, tc := range []struct {
		name string
		h    admission.Handler
	}{
		{"regcred", f.h},
		{"baseline-allow", admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })},
	} {
		wh := &admission.Webhook{Handler: tc.h}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/mutate-v1-pod", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				wh.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
