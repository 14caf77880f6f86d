package admission

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"sync"

	"github.com/regcred/regcred/pkg/jsonscan"
)

// reply is the answer to one review.
type reply struct {
	// denied is set only for what is no review (status says why): a Pod
	// is never denied.
	denied bool
	status int32
	reason string
	// patch is a JSON patch; nil for none.
	patch    []byte
	warnings []string
}

// allowed admits the object unchanged, with warnings if any.
func allowed(warnings ...string) reply { return reply{warnings: warnings} }

// errored answers what cannot be reviewed (a malformed review), as
// controller-runtime does: not allowed, with the HTTP status and why.
func errored(status int32, err error) reply {
	return reply{denied: true, status: status, reason: err.Error()}
}

// responses recycles the buffers answers are written in.
var responses = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeReview writes the AdmissionReview that answers the review of uid,
// in the review's version.
func writeReview(w http.ResponseWriter, apiVersion, uid string, rep reply) {
	bp := responses.Get().(*[]byte)
	b := appendReview((*bp)[:0], apiVersion, uid, rep)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	// JSON, with every string escaped; a failed write is the connection's:
	// nothing to tell it.
	_, _ = w.Write(b) //nolint:gosec // G705: an application/json body, not HTML
	if cap(b) <= maxPooledBody {
		*bp = b[:0]
		responses.Put(bp)
	}
}

// appendReview appends the JSON of the AdmissionReview with rep to dst,
// shaped as k8s.io/api's admission/v1 AdmissionReview is.
func appendReview(dst []byte, apiVersion, uid string, rep reply) []byte {
	dst = append(dst, `{"kind":"AdmissionReview","apiVersion":`...)
	dst = jsonscan.AppendString(dst, apiVersion)
	dst = append(dst, `,"response":{"uid":`...)
	dst = jsonscan.AppendString(dst, uid)
	if rep.denied {
		dst = append(dst, `,"allowed":false,"status":{"metadata":{},"message":`...)
		dst = jsonscan.AppendString(dst, rep.reason)
		dst = append(dst, `,"code":`...)
		dst = strconv.AppendInt(dst, int64(rep.status), 10)
		dst = append(dst, '}')
	} else {
		dst = append(dst, `,"allowed":true`...)
	}
	if len(rep.patch) > 0 {
		dst = append(dst, `,"patch":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, rep.patch)
		dst = append(dst, `","patchType":"JSONPatch"`...)
	}
	if len(rep.warnings) > 0 {
		dst = append(dst, `,"warnings":[`...)
		for i, w := range rep.warnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonscan.AppendString(dst, w)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}}"...)
}
