package admission

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/regcred/regcred/pkg/jsonscan"
)

// maxReviewSize bounds the body of a review, as controller-runtime does:
// two objects of at most 3 MB each and the rest.
const maxReviewSize = 7 << 20

// The AdmissionReview versions regcred answers; the API server asks in
// the first of the versions the webhook configuration lists.
const (
	reviewV1      = "admission.k8s.io/v1"
	reviewV1beta1 = "admission.k8s.io/v1beta1"
	reviewKind    = "AdmissionReview"
)

// review is what regcred reads of an AdmissionReview, in one pass over
// its JSON: the request's few fields a handler needs, and either its
// object as a Pod or its old object's labels.
type review struct {
	apiVersion string
	// request is nil when the review has none.
	request *request
}

// request is what regcred reads of an AdmissionReview's request.
type request struct {
	uid                     string
	group, version, kind    string
	subResource             string
	name, namespace         string
	operation               string
	username                string
	dryRun                  *bool
	hasObject, hasOldObject bool
	// pod is the object, read when reviewing Pods; podErr says why it
	// could not be.
	pod    podView
	podErr error
	// oldLabels are the old object's labels, read when reviewing Secrets.
	oldLabels map[string]string
	oldErr    error
}

// reads says what of the objects decodeReview reads.
type reads int

const (
	// readObjectAsPod reads the request's object as a Pod.
	readObjectAsPod reads = iota
	// readOldObjectLabels reads the labels of the request's old object.
	readOldObjectLabels
)

func (r *request) isDryRun() bool { return r.dryRun != nil && *r.dryRun }

// decodeReview reads an AdmissionReview. An error means the body is no
// AdmissionReview regcred can answer: not JSON, another kind, a request
// whose fields are of the wrong type. An object that is not what it
// should be is not an error of the review (podErr, oldErr).
func decodeReview(body []byte, what reads) (review, error) {
	var rv review
	r := jsonscan.NewReader(body)
	kind := ""
	for m := r.Object(); m.Next(); {
		switch string(r.Key()) {
		case "apiVersion":
			r.ReadString(&rv.apiVersion)
		case "kind":
			r.ReadString(&kind)
		case "request":
			if r.Peek() == jsonscan.Null {
				r.Skip()
				rv.request = nil
				continue
			}
			if rv.request == nil {
				rv.request = &request{}
			}
			readRequest(r, rv.request, what)
		default:
			r.Skip()
		}
	}
	if err := r.End(); err != nil {
		return review{}, fmt.Errorf("cannot read the AdmissionReview: %w", err)
	}
	if rv.apiVersion != "" && rv.apiVersion != reviewV1 && rv.apiVersion != reviewV1beta1 || kind != "" && kind != reviewKind {
		return review{}, fmt.Errorf("not an AdmissionReview of %s or %s: apiVersion %q, kind %q", reviewV1, reviewV1beta1, rv.apiVersion, kind)
	}
	if rv.apiVersion == "" {
		rv.apiVersion = reviewV1
	}
	return rv, nil
}

func readRequest(r *jsonscan.Reader, req *request, what reads) {
	for m := r.Object(); m.Next(); {
		switch string(r.Key()) {
		case "uid":
			r.ReadString(&req.uid)
		case "kind":
			for k := r.Object(); k.Next(); {
				switch string(r.Key()) {
				case "group":
					r.ReadString(&req.group)
				case "version":
					r.ReadString(&req.version)
				case "kind":
					r.ReadString(&req.kind)
				default:
					r.Skip()
				}
			}
		case "subResource":
			r.ReadString(&req.subResource)
		case "name":
			r.ReadString(&req.name)
		case "namespace":
			r.ReadString(&req.namespace)
		case "operation":
			r.ReadString(&req.operation)
		case "userInfo":
			for u := r.Object(); u.Next(); {
				if string(r.Key()) == "username" {
					r.ReadString(&req.username)
				} else {
					r.Skip()
				}
			}
		case "dryRun":
			r.ReadBool(&req.dryRun)
		case "object":
			req.hasObject = true
			if what != readObjectAsPod {
				r.Skip()
				continue
			}
			// A type error in the object is the Pod's, not the review's.
			outer := r.SetTypeError(nil)
			req.pod = podView{}
			readPod(r, &req.pod)
			req.podErr = r.SetTypeError(outer)
		case "oldObject":
			req.hasOldObject = true
			if what != readOldObjectLabels {
				r.Skip()
				continue
			}
			outer := r.SetTypeError(nil)
			req.oldLabels = nil
			readLabels(r, &req.oldLabels)
			req.oldErr = r.SetTypeError(outer)
		default:
			r.Skip()
		}
	}
}

// readLabels reads an object's metadata.labels.
func readLabels(r *jsonscan.Reader, labels *map[string]string) {
	for m := r.Object(); m.Next(); {
		if string(r.Key()) != "metadata" {
			r.Skip()
			continue
		}
		for it := r.Object(); it.Next(); {
			if string(r.Key()) == "labels" {
				r.ReadStringMap(labels)
			} else {
				r.Skip()
			}
		}
	}
}

// bodies recycles the buffers reviews are read into: what a review's
// decoding keeps never shares their memory.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody bounds the buffers kept for reuse: an odd huge review
// does not stay in memory.
const maxPooledBody = 64 << 10

// errTooLarge is a body past maxReviewSize.
var errTooLarge = fmt.Errorf("the request body is larger than %d bytes", maxReviewSize)

// reviewHead is how much of a review larger than maxReviewSize is kept:
// enough for its request's fields before the object (truncatedReview).
const reviewHead = 64 << 10

// truncatedReview reads the request of a review too large to read whole
// from its head: the API server writes the request's fields (uid, kind,
// operation, namespace, user) before its object, so the head closed where
// the object starts is a review without one. ok is false when the head
// holds no such request (its object not found, or no uid to answer).
func truncatedReview(head []byte, what reads) (rv review, ok bool) {
	i := bytes.Index(head, []byte(`"object":`))
	if i < 0 {
		return review{}, false
	}
	closed := append(head[:i:i], `"object":null}}`...)
	rv, err := decodeReview(closed, what)
	if err != nil || rv.request == nil || rv.request.uid == "" {
		return review{}, false
	}
	return rv, true
}

// readBody reads a request's body into buf, at most maxReviewSize bytes.
// With errTooLarge it returns the body's first reviewHead bytes.
func readBody(req *http.Request, buf []byte) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, errors.New("the request body is empty")
	}
	if req.ContentLength > maxReviewSize {
		head, _ := io.ReadAll(io.LimitReader(req.Body, reviewHead))
		return head, errTooLarge
	}
	if n := int(req.ContentLength); n > 0 && cap(buf) < n+1 {
		buf = make([]byte, 0, n+1) // +1: EOF is read without growing
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := req.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > maxReviewSize {
			return buf[:reviewHead], errTooLarge
		}
		if errors.Is(err, io.EOF) {
			if len(buf) == 0 {
				return nil, errors.New("the request body is empty")
			}
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the request body: %w", err)
		}
	}
}
