package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// serveReview reads the review a request carries, has answer answer it
// and writes the answer. Whatever the request holds, it is answered: a
// malformed review as controller-runtime answers one (not allowed, with
// the HTTP status in the response), a panic anywhere with the object
// admitted unchanged.
func serveReview(w http.ResponseWriter, r *http.Request, what reads, log logr.Logger, answer func(context.Context, *request) reply) {
	apiVersion, uid := reviewV1, ""
	defer func() {
		if p := recover(); p != nil {
			log.Error(fmt.Errorf("panic: %v", p), "Review failed; admitted unchanged", "requestID", uid)
			writeReview(w, apiVersion, uid, allowed("regcred failed internally; admitted without changes"))
		}
	}()
	bp := bodies.Get().(*[]byte)
	body, err := readBody(r, *bp)
	if cap(body) > 0 && cap(body) <= maxPooledBody {
		defer func() {
			*bp = body[:0]
			bodies.Put(bp)
		}()
	}
	if errors.Is(err, errTooLarge) {
		// Larger than regcred reads, yet maybe a valid object (the API
		// server writes <, > and & six characters long): answered to its
		// request as one whose object could not be read.
		if rv, ok := truncatedReview(body, what); ok {
			rv.request.hasObject, rv.request.podErr = true, errTooLarge
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), reviewTime(r))
			defer cancel()
			writeReview(w, rv.apiVersion, rv.request.uid, answer(ctx, rv.request))
			return
		}
	}
	if err != nil {
		status := int32(http.StatusBadRequest)
		if errors.Is(err, errTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		log.Error(err, "Cannot read the review")
		writeReview(w, apiVersion, uid, errored(status, err))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		err := fmt.Errorf("contentType=%s, expected application/json", ct)
		log.Error(err, "Cannot read the review")
		writeReview(w, apiVersion, uid, errored(http.StatusBadRequest, err))
		return
	}
	rv, err := decodeReview(body, what)
	if err == nil && rv.request == nil {
		err = errors.New("the AdmissionReview has no request")
	}
	if err != nil {
		log.Error(err, "Cannot read the review")
		writeReview(w, apiVersion, uid, errored(http.StatusBadRequest, err))
		return
	}
	apiVersion, uid = rv.apiVersion, rv.request.uid
	// The webhook server cancels every request's context as soon as it
	// begins to shut down, though it waits for them: a review under way
	// then still makes its pull secret, within the time the API server
	// waits for the webhook.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), reviewTime(r))
	defer cancel()
	writeReview(w, apiVersion, uid, answer(ctx, rv.request))
}

// maxReviewTime bounds a review's work: the longest timeoutSeconds a
// webhook configuration may set.
const maxReviewTime = 30 * time.Second

// reviewTime is how long a review may work: less than the API server
// waits for the answer (its timeoutSeconds, which it sends as the query's
// timeout), so that a first ECR token slower than that (an
// --ecr-token-budget longer than the webhook's timeout) still ends in an
// answer, with its warning, rather than in the API server giving up and
// admitting the Pod unchanged.
func reviewTime(r *http.Request) time.Duration {
	// Read without url.Values, which would allocate on every review.
	for q := r.URL.RawQuery; q != ""; {
		var param string
		param, q, _ = strings.Cut(q, "&")
		if v, ok := strings.CutPrefix(param, "timeout="); ok {
			if t, err := time.ParseDuration(v); err == nil && t > 0 {
				return min(maxReviewTime, t-min(time.Second, t/4))
			}
		}
	}
	return maxReviewTime
}

// requestLog is the logger of one review, with its namespace, object and
// request ID: made on first use, as most reviews log nothing.
type requestLog struct {
	base logr.Logger
	req  *request
	log  *logr.Logger
}

func (l *requestLog) get() logr.Logger {
	if l.log == nil {
		req := l.req
		name := req.name
		if req.hasObject && req.podErr == nil {
			name = req.pod.displayName()
		}
		lg := l.base.WithValues("namespace", req.namespace, "object", klog.KRef(req.namespace, name), "requestID", req.uid)
		l.log = &lg
	}
	return *l.log
}
