package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	kjson "sigs.k8s.io/json"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/secretstore"
)

// testReview is an AdmissionReview's request, written as the API server
// writes one.
type testReview struct {
	apiVersion                     string
	group, kind, operation, subRes string
	namespace, name, username      string
	dryRun                         bool
	// object and oldObject are raw JSON; empty leaves them out.
	object, oldObject string
}

// podReview is the review of a Pod's creation in namespace ns.
func podReview(ns, pod string) testReview {
	return testReview{kind: "Pod", operation: "CREATE", namespace: ns, username: "alice", object: pod}
}

func (r testReview) json() []byte {
	q := func(s string) string { return strconv.Quote(s) }
	v := r.apiVersion
	if v == "" {
		v = reviewV1
	}
	resource := strings.ToLower(r.kind) + "s"
	b := `{"kind":"AdmissionReview","apiVersion":` + q(v) + `,"request":{"uid":"uid-1","kind":{"group":` + q(r.group) + `,"version":"v1","kind":` + q(r.kind) + `},` +
		`"resource":{"group":` + q(r.group) + `,"version":"v1","resource":` + q(resource) + `},` +
		`"requestKind":{"group":` + q(r.group) + `,"version":"v1","kind":` + q(r.kind) + `},`
	if r.subRes != "" {
		b += `"subResource":` + q(r.subRes) + `,`
	}
	b += `"name":` + q(r.name) + `,"namespace":` + q(r.namespace) + `,"operation":` + q(r.operation) + `,` +
		`"userInfo":{"username":` + q(r.username) + `,"groups":["system:authenticated"]},`
	if r.object != "" {
		b += `"object":` + r.object + `,`
	}
	if r.oldObject != "" {
		b += `"oldObject":` + r.oldObject + `,`
	}
	return []byte(b + `"dryRun":` + strconv.FormatBool(r.dryRun) + `,"options":{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}}`)
}

// answer is what a webhook answered, read with k8s.io/api's types.
type answer struct {
	apiVersion string
	uid        string
	allowed    bool
	// code is the status's, for a review that was not allowed.
	code     int32
	patch    string
	warnings []string
}

// post sends body to h as the API server does, and reads the answer.
func post(t testing.TB, h http.Handler, contentType string, body []byte) answer {
	t.Helper()
	return postWithin(t, context.Background(), h, contentType, body)
}

// postWithin is post with the request's context (the webhook server's,
// which it cancels when it begins to shut down).
func postWithin(t testing.TB, ctx context.Context, h http.Handler, contentType string, body []byte) answer {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mutate-v1-pod", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %q", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Fatalf("Content-Length %q for %d bytes", cl, rec.Body.Len())
	}
	var rv admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(rec.Body.Bytes(), &rv); err != nil {
		t.Fatalf("the answer is not an AdmissionReview: %v: %q", err, rec.Body.String())
	}
	if rv.Kind != "AdmissionReview" || rv.Response == nil {
		t.Fatalf("the answer is not an AdmissionReview with a response: %q", rec.Body.String())
	}
	a := answer{apiVersion: rv.APIVersion, uid: string(rv.Response.UID), allowed: rv.Response.Allowed, patch: string(rv.Response.Patch), warnings: rv.Response.Warnings}
	if len(rv.Response.Patch) > 0 && (rv.Response.PatchType == nil || *rv.Response.PatchType != admissionv1.PatchTypeJSONPatch) {
		t.Fatalf("a patch without patchType JSONPatch: %q", rec.Body.String())
	}
	if !a.allowed {
		if rv.Response.Result == nil {
			t.Fatalf("not allowed, without a status: %q", rec.Body.String())
		}
		a.code = rv.Response.Result.Code
	}
	return a
}

// admit sends a review to h.
func admit(t testing.TB, h http.Handler, r testReview) answer {
	t.Helper()
	return post(t, h, "application/json", r.json())
}

// A malformed AdmissionReview is answered, never dropped and never a panic.
func TestMalformedReviewsAreAnswered(t *testing.T) {
	h := newFixture(t).h
	pod := podReview("app", `{"spec":{"containers":[{"image":"quay.io/org/app"}]}}`)
	for _, tc := range []struct {
		name, contentType, body string
		allowed                 bool
		code                    int32
		warnings                []string
	}{
		{"empty body", "application/json", "", false, http.StatusBadRequest, nil},
		{"not JSON", "application/json", "{", false, http.StatusBadRequest, nil},
		{"null", "application/json", "null", false, http.StatusBadRequest, nil},
		{"no request", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, false, http.StatusBadRequest, nil},
		{"another kind", "application/json", `{"apiVersion":"v1","kind":"Pod","request":{}}`, false, http.StatusBadRequest, nil},
		{"a request field of the wrong type", "application/json", `{"request":{"uid":1}}`, false, http.StatusBadRequest, nil},
		{"wrong content type", "text/plain", string(pod.json()), false, http.StatusBadRequest, nil},
		{"too large", "application/json", `{"request":{"object":"` + strings.Repeat("x", maxReviewSize) + `"}}`, false, http.StatusRequestEntityTooLarge, nil},
		{"no object", "application/json", string(podReview("app", "").json()), true, 0, []string{"regcred could not read this Pod; no pull secrets injected"}},
		{"a Pod that is not an object", "application/json", string(podReview("app", `"nope"`).json()), true, 0, []string{"regcred could not read this Pod; no pull secrets injected"}},
		{"a Pod with wrong field types", "application/json", string(podReview("app", `{"spec":{"containers":[{"image":42}]}}`).json()), true, 0, []string{"regcred could not read this Pod; no pull secrets injected"}},
		{"a null Pod: nothing to do", "application/json", string(podReview("app", `null`).json()), true, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, h, tc.contentType, []byte(tc.body))
			assert.Equal(t, tc.allowed, a.allowed)
			assert.Equal(t, tc.code, a.code)
			assert.Empty(t, a.patch)
			assert.Equal(t, tc.warnings, a.warnings)
		})
	}
}

// A valid Pod whose review is larger than regcred reads (the API server
// writes <, > and & six characters long) is admitted unchanged, answered
// to its request, with a warning, and counted as failed open: whether the
// body's length is known first or not.
func TestAReviewTooLargeIsAdmittedWithAWarning(t *testing.T) {
	page := strings.Repeat(`\u003c`, maxReviewSize/6+1)
	body := podReview("app", `{"spec":{"containers":[{"image":"quay.io/org/app","env":[{"name":"PAGE","value":"`+page+`"}]}]}}`).json()
	for _, length := range []string{"known", "chunked"} {
		t.Run(length, func(t *testing.T) {
			f := newFixture(t)
			req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
			if length == "chunked" {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			var rv admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rv))
			require.NotNil(t, rv.Response)
			assert.True(t, rv.Response.Allowed)
			assert.Equal(t, "uid-1", string(rv.Response.UID))
			assert.Empty(t, rv.Response.Patch)
			assert.Equal(t, []string{"regcred could not read this Pod: its admission review is larger than the 7 MiB regcred reads; no pull secrets injected"}, rv.Response.Warnings)
			assert.Equal(t, map[Outcome]int{FailedOpen: 1}, f.metrics.outcomes)
		})
	}
}

func TestReviewRoundTrip(t *testing.T) {
	h := newFixture(t).h
	a := admit(t, h, podReview("app", `{"metadata":{"generateName":"web-"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`))
	assert.True(t, a.allowed)
	assert.Equal(t, "uid-1", a.uid)
	assert.Equal(t, reviewV1, a.apiVersion)
	assert.JSONEq(t, `[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred-quay"}]},{"op":"add","path":"/metadata/annotations","value":{"regcred.io/injected":"regcred-quay=quay"}}]`, a.patch)

	// A v1beta1 review is answered in v1beta1.
	r := podReview("app", `{"spec":{"containers":[{"image":"quay.io/org/app"}]}}`)
	r.apiVersion = reviewV1beta1
	a = admit(t, h, r)
	assert.Equal(t, reviewV1beta1, a.apiVersion)
	assert.NotEmpty(t, a.patch)
}

// The answer is written as encoding/json writes k8s.io/api's
// AdmissionReview, escapes and all.
func TestAppendReviewAsEncodingJSON(t *testing.T) {
	for _, rep := range []reply{
		allowed(),
		allowed("w1", "quote \" backslash \\ newline \n \xff"),
		{patch: []byte(`[{"op":"add","path":"/a","value":"é"}]`), warnings: []string{"<&>"}},
		errored(http.StatusBadRequest, assert.AnError),
	} {
		got := appendReview(nil, reviewV1, "uid \"1\"", rep)
		var rv admissionv1.AdmissionReview
		require.NoError(t, json.Unmarshal(got, &rv), "%s", got)
		want, err := json.Marshal(rv)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(got))
	}
}

// decodeReview reads a review as sigs.k8s.io/json decodes it into the
// fields it reads: both fail, or both read the same.
func FuzzDecodeReview(f *testing.F) {
	f.Add(podReview("app", `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`).json())
	f.Add(testReview{kind: "Secret", operation: "DELETE", namespace: "ns", name: "s", oldObject: `{"metadata":{"labels":{"a":"b"}}}`}.json())
	f.Add([]byte(`{"request":{"uid":"u","object":{"spec":{"containers":[{"image":1}]}},"object":null,"dryRun":null}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","request":null,"request":{"kind":{"kind":"Pod"},"kind":null}}`))
	f.Add(podReview("app", `{"spec":{"containers":[{"image":"nginx"}],"volumes":[{"name":"c","configMap":{"name":"x"}},{"name":"v","image":{"reference":"quay.io/org/data:1","pullPolicy":"Always"}}]}}`).json())
	f.Add(podReview("app", `{"spec":{"volumes":[{"name":"v","image":{"reference":1}}]}}`).json())
	type mirror struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Request    *struct {
			UID  string `json:"uid"`
			Kind struct {
				Group   string `json:"group"`
				Version string `json:"version"`
				Kind    string `json:"kind"`
			} `json:"kind"`
			SubResource string `json:"subResource"`
			Name        string `json:"name"`
			Namespace   string `json:"namespace"`
			Operation   string `json:"operation"`
			UserInfo    struct {
				Username string `json:"username"`
			} `json:"userInfo"`
			DryRun    *bool           `json:"dryRun"`
			Object    json.RawMessage `json:"object"`
			OldObject json.RawMessage `json:"oldObject"`
		} `json:"request"`
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want mirror
		wantErr := kjson.UnmarshalCaseSensitivePreserveInts(body, &want)
		if wantErr == nil && (want.APIVersion != "" && want.APIVersion != reviewV1 && want.APIVersion != reviewV1beta1 || want.Kind != "" && want.Kind != reviewKind) {
			wantErr = assert.AnError
		}
		for _, what := range []reads{readObjectAsPod, readOldObjectLabels} {
			rv, err := decodeReview(body, what)
			if (wantErr == nil) != (err == nil) {
				t.Fatalf("%q: sigs.k8s.io/json says %v, decodeReview %v", body, wantErr, err)
			}
			if err != nil {
				continue
			}
			if (want.Request == nil) != (rv.request == nil) {
				t.Fatalf("%q: request %v, decodeReview %v", body, want.Request, rv.request)
			}
			if want.Request == nil {
				continue
			}
			w, got := want.Request, rv.request
			if w.UID != got.uid || w.Kind.Group != got.group || w.Kind.Version != got.version || w.Kind.Kind != got.kind ||
				w.SubResource != got.subResource || w.Name != got.name || w.Namespace != got.namespace ||
				w.Operation != got.operation || w.UserInfo.Username != got.username || !reflect.DeepEqual(w.DryRun, got.dryRun) ||
				(len(w.Object) > 0) != got.hasObject || (len(w.OldObject) > 0) != got.hasOldObject {
				t.Fatalf("%q: sigs.k8s.io/json read %+v, decodeReview %+v", body, w, got)
			}
			switch what {
			case readObjectAsPod:
				if len(w.Object) == 0 {
					continue
				}
				pod, err := decodePod(w.Object)
				if (err == nil) != (got.podErr == nil) || err == nil && !reflect.DeepEqual(*pod, got.pod) {
					t.Fatalf("%q: the Pod alone reads %+v (%v), in the review %+v (%v)", body, pod, err, got.pod, got.podErr)
				}
			case readOldObjectLabels:
				if len(w.OldObject) == 0 {
					continue
				}
				var old struct {
					Metadata struct {
						Labels map[string]string `json:"labels"`
					} `json:"metadata"`
				}
				err := kjson.UnmarshalCaseSensitivePreserveInts(w.OldObject, &old)
				if (err == nil) != (got.oldErr == nil) || err == nil && !reflect.DeepEqual(old.Metadata.Labels, got.oldLabels) {
					t.Fatalf("%q: the old object's labels read %v (%v), in the review %v (%v)", body, old.Metadata.Labels, err, got.oldLabels, got.oldErr)
				}
			}
		}
	})
}

// Whatever the body, the webhook answers with an AdmissionReview, and
// allows every review it can read.
func FuzzServeHTTP(f *testing.F) {
	f.Add(podReview("app", `{"spec":{"containers":[{"image":"quay.io/org/app"}]}}`).json())
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`))
	f.Add([]byte(`{"request":{"object":null,"kind":{"kind":"Pod"},"operation":"CREATE"}}`))
	h := newFixture(f).h
	s := &SecretEvents{Restore: func(string, string) {}}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, handler := range []http.Handler{h, s} {
			a := post(t, handler, "application/json", body)
			rv, err := decodeReview(body, readObjectAsPod)
			readable := err == nil && rv.request != nil
			if readable != a.allowed {
				t.Fatalf("%q: a review that can be read (%t) must be allowed, and only that: allowed %t", body, readable, a.allowed)
			}
			if !a.allowed && a.code != http.StatusBadRequest {
				t.Fatalf("%q: denied with %d", body, a.code)
			}
		}
	})
}

// The webhook server cancels the requests' context when it begins to shut
// down, and waits for them: a review under way still makes its pull
// secret, rather than admitting the Pod with the name of a secret that
// may never be made.
func TestReviewOutlivesTheServersShutdown(t *testing.T) {
	f := newFixture(t)
	shuttingDown, cancel := context.WithCancel(context.Background())
	cancel()
	a := postWithin(t, shuttingDown, f.h, "application/json", podReview("app", `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`).json())
	assert.True(t, a.allowed)
	assert.Contains(t, a.patch, `"regcred-quay"`)
	assert.Empty(t, a.warnings, "the secret was made: nothing to retry")
	assert.Empty(t, f.retries)
	assert.Equal(t, []string{"app/regcred-quay dryRun=false"}, f.ensurer.calls)
}

// deadlineStore notes the time left to each Apply.
type deadlineStore struct {
	*fakeStore
	left []time.Duration
}

func (d *deadlineStore) Apply(ctx context.Context, ns string, w *pullsecret.Want, dryRun bool) (secretstore.Outcome, error) {
	if dl, ok := ctx.Deadline(); ok {
		d.left = append(d.left, time.Until(dl))
	}
	return d.fakeStore.Apply(ctx, ns, w, dryRun)
}

// A review works for less than the API server waits for it (the timeout
// it sends with each call), so that its answer, warnings included,
// arrives before the API server gives up.
func TestReviewWorksWithinTheAPIServersTimeout(t *testing.T) {
	for query, bound := range map[string]time.Duration{
		"?timeout=2s":         1500 * time.Millisecond,
		"?timeout=10s":        9 * time.Second,
		"?timeout=bad":        maxReviewTime,
		"?a=b&timeout=4s&c=d": 3 * time.Second,
		"":                    maxReviewTime,
	} {
		f := newFixture(t)
		store := &deadlineStore{fakeStore: f.ensurer}
		f.h.Secrets = store
		req := httptest.NewRequest(http.MethodPost, "/mutate-v1-pod"+query, bytes.NewReader(podReview("app", `{"metadata":{"name":"p"},"spec":{"containers":[{"image":"quay.io/org/app"}]}}`).json()))
		req.Header.Set("Content-Type", "application/json")
		f.h.ServeHTTP(httptest.NewRecorder(), req)
		require.Len(t, store.left, 1, query)
		assert.LessOrEqual(t, store.left[0], bound, query)
		assert.Greater(t, store.left[0], bound-time.Second, query)
	}
}
